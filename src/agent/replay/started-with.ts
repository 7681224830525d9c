/**
 * Which of fds 0–2 the new process has open before its table is replaced: the ones an
 * `inherit` rule keeps even when the saved table has none (a daemon that closed its
 * stdio is restored with its container's or its caller's, as a fresh exec would be).
 */
import { fstatSync, readlinkSync } from 'node:fs';

const STDIO = [0, 1, 2] as const;

/** For a launcher started by this process with `io`: /dev/null for `ignore`, else ours. */
export function stdioStartedWith(io: 'inherit' | 'ignore'): Set<number> {
  if (io === 'ignore') return new Set(STDIO);
  return new Set(STDIO.filter((fd) => isOpen(() => fstatSync(fd))));
}

/** For a held process already running (a pod's launcher), read from /proc. */
export function stdioOfProcess(pid: number): Set<number> {
  return new Set(STDIO.filter((fd) => isOpen(() => readlinkSync(`/proc/${pid}/fd/${fd}`))));
}

function isOpen(probe: () => unknown): boolean {
  try {
    probe();
    return true;
  } catch {
    return false;
  }
}
