/**
 * Socket handoff (socket activation, sd_listen_fds(3)): the saved listening
 * sockets go to fds 3, 4, … in the order of their saved fd numbers, without
 * close-on-exec, and the program is told with LISTEN_FDS=N, LISTEN_PID (set by
 * fdckpt-hold --listen-fds, the only one that knows the pid before exec) and
 * LISTEN_FDNAMES (passed to the launcher at its release: release.ts). A program that supports it resumes on its old sockets instead
 * of binding new ones.
 */
import type { Checkpoint, FdRecord } from '../model.js';
import { ReplayError } from '../replay-steps/errors.js';
import { decide, isListening, type RestorePolicy } from './policy.js';
import { tableOf } from './units.js';

/** The first fd socket activation hands over (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/** A checkpoint whose table was renumbered for handoff, and what to tell the program. */
export interface Handoff {
  cp: Checkpoint;
  /** LISTEN_FDS. */
  count: number;
  /** LISTEN_FDNAMES entries: `fd<saved fd number>`, so the program can tell its sockets apart. */
  names: string[];
}

/**
 * Renumbers the listening sockets of process `pid`'s table (those `policy` does
 * not skip) to fds 3…; any other fd the policy would replay in that range is an
 * error naming it (the program would take it for a listener).
 */
export function handOff(cp: Checkpoint, policy: RestorePolicy, pid?: number): Handoff {
  const table = tableOf(cp, pid);
  const files = new Map(cp.files.map((f) => [f.objref, f]));
  const replayed = (rec: FdRecord): boolean => {
    const file = files.get(rec.file);
    if (!file || file.ignored) return false;
    const action = decide(policy, rec.fd, file, rec.cloexec).action;
    return action !== 'skip' && action !== 'inherit';
  };
  const sorted = [...table.fds].sort((a, b) => a.fd - b.fd);
  const listeners = sorted.filter((rec) => replayed(rec) && isListening(files.get(rec.file)!));
  const end = LISTEN_FDS_START + listeners.length;
  const moved = new Set(listeners);
  for (const rec of sorted) {
    if (moved.has(rec) || rec.fd < LISTEN_FDS_START || rec.fd >= end || !replayed(rec)) continue;
    throw new ReplayError(
      rec.fd,
      files.get(rec.file)?.path ?? `objref ${rec.file}`,
      `socket handoff puts the ${listeners.length} listening sockets at fds ${LISTEN_FDS_START}..${end - 1}, ` +
        'and this fd is replayed there (policy skip can leave it closed)',
    );
  }
  // What else sat in 3..end-1 is left closed anyway (checked above): drop it, so no fd is listed twice.
  const fds = sorted
    .filter((rec) => moved.has(rec) || rec.fd < LISTEN_FDS_START || rec.fd >= end)
    .map((rec) => {
      const i = listeners.indexOf(rec);
      return i < 0 ? rec : { ...rec, fd: LISTEN_FDS_START + i, cloexec: false };
    })
    .sort((a, b) => a.fd - b.fd);
  // Planning applies the policy again, to the new numbers: a rule by fd number sees 3, 4, ….
  const tables = cp.tables.map((t) => (t === table ? { ...t, fds } : t));
  return { cp: { ...cp, tables }, count: listeners.length, names: listeners.map((rec) => `fd${rec.fd}`) };
}
