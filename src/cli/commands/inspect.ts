/**
 * `fdckpt inspect FILE [--json]`: what an image holds — a table per process
 * for people, or the documented JSON shape for tools.
 */
import { readImageFile, renderInspectTable, toInspectJson } from '../../agent/image/index.js';
import { type Command, UsageError, parseArgs } from '../command.js';

const USAGE = 'inspect FILE [--json]';

async function run(args: string[]): Promise<number> {
  const parsed = parseArgs(args, ['json']);
  if (parsed.positional.length !== 1 || parsed.flags.size > 0) {
    throw new UsageError(`usage: fdckpt ${USAGE}`);
  }
  const { checkpoint, version } = await readImageFile(parsed.positional[0]!);
  const out = parsed.booleans.has('json')
    ? `${JSON.stringify(toInspectJson(checkpoint, version))}\n`
    : renderInspectTable(checkpoint);
  process.stdout.write(out.endsWith('\n') ? out : `${out}\n`);
  return 0;
}

export const command: Command = { name: 'inspect', usage: USAGE, run };
