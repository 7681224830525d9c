/**
 * waitpid(2) with __WALL, decoded. Used by replay on its tracee (which is not
 * a child of this process, so libuv's SIGCHLD reaper never sees it).
 */
import { koffi, libc } from './libc.js';
import { SyscallError } from './errors.js';

const c = { waitpid: libc.waitpid };

const WALL = 0x40000000;
const EINTR = 4;

/** What waitpid reported. */
export type WaitStatus =
  | { kind: 'exited'; code: number }
  | { kind: 'signaled'; signal: number }
  /** A ptrace stop: `signal` is the stop signal, `event` the PTRACE_EVENT (0 if none). */
  | { kind: 'stopped'; signal: number; event: number };

/** Decodes a raw wait status word. */
export function decodeWaitStatus(status: number): WaitStatus {
  if ((status & 0x7f) === 0) return { kind: 'exited', code: (status >> 8) & 0xff };
  if ((status & 0xff) === 0x7f)
    return { kind: 'stopped', signal: (status >> 8) & 0xff, event: (status >> 16) & 0xff };
  return { kind: 'signaled', signal: status & 0x7f };
}

/** Blocks until `pid` changes state (__WALL: ptrace stops included). */
export function waitPid(pid: number): WaitStatus {
  const status = new Int32Array(1);
  for (;;) {
    const r = c.waitpid(pid, status, WALL);
    if (r === pid) return decodeWaitStatus(status[0]!);
    const errno = koffi.errno();
    if (r === -1 && errno === EINTR) continue;
    throw new SyscallError('waitpid', errno, `pid ${pid}`);
  }
}

const WNOHANG = 1;

/** waitpid(__WALL | WNOHANG): the state change of `pid` if there is one, else undefined. */
export function waitPidNoHang(pid: number): WaitStatus | undefined {
  const status = new Int32Array(1);
  for (;;) {
    const r = c.waitpid(pid, status, WALL | WNOHANG);
    if (r === pid) return decodeWaitStatus(status[0]!);
    if (r === 0) return undefined;
    const errno = koffi.errno();
    if (r === -1 && errno === EINTR) continue;
    throw new SyscallError('waitpid', errno, `pid ${pid}`);
  }
}
