/**
 * This process's fd limit. Replay: the restored program inherits it through the
 * launcher (Node raises its soft limit to the hard one at startup), so a saved fd at or
 * above it cannot be placed. Capture: the copies one table read may hold open.
 */
import fs from 'node:fs';

/** The soft RLIMIT_NOFILE of this process, from /proc/self/limits (Infinity when unlimited). */
export function fdLimit(): number {
  const text = fs.readFileSync('/proc/self/limits', 'utf8');
  const line = text.split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  if (soft === undefined) throw new Error('/proc/self/limits has no "Max open files" line');
  return soft === 'unlimited' ? Infinity : Number(soft);
}
