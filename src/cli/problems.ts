/** How the CLI tells the fds a capture refuses: each with the flag that would accept it. */
import type { FileType } from '../agent/model.js';

/** A problem's message, with the CLI's way to ignore it when an ignore can. */
export function withIgnoreHint(p: { message: string; ignoreType?: FileType }): string {
  return p.ignoreType ? `${p.message} (ignore it with --ignore-type ${p.ignoreType})` : p.message;
}

/** One message naming every refused fd (all of them, in one pass). */
export function refusal(problems: readonly { message: string; ignoreType?: FileType }[]): string {
  const plural = problems.length === 1 ? 'fd cannot' : 'fds cannot';
  return `${problems.length} ${plural} be checkpointed: ${problems.map(withIgnoreHint).join('; ')}`;
}
