/**
 * Child subreaper (prctl PR_SET_CHILD_SUBREAPER) and waitpid(WNOHANG) for processes that
 * Node did not spawn: orphans of our descendants are reparented to us instead of
 * to pid 1 (which, in some sandboxes, never reaps them), and we reap them here.
 *
 * Only call reap() for pids that are not Node's own children: libuv waits for
 * those itself, and a pid reaped behind its back loses its 'exit' event.
 */
import { koffi, lib, libc } from './libc.js';
import { SyscallError } from './errors.js';
import { decodeWaitStatus, type WaitStatus } from './wait.js';

const PR_SET_CHILD_SUBREAPER = 36;
const PR_GET_CHILD_SUBREAPER = 37;
const WNOHANG = 1;

const c = {
  prctl: lib.func('int prctl(int option, ...)') as (...a: unknown[]) => number,
  waitpid: libc.waitpid,
};

/** Makes this process the reaper of orphaned descendants (prctl(PR_SET_CHILD_SUBREAPER, 1)). */
export function setChildSubreaper(): void {
  if (c.prctl(PR_SET_CHILD_SUBREAPER, 'ulong', 1) === -1) {
    throw new SyscallError('prctl', koffi.errno(), 'PR_SET_CHILD_SUBREAPER');
  }
}

/** True when this process is a child subreaper. */
export function isChildSubreaper(): boolean {
  const out = Buffer.alloc(4);
  if (c.prctl(PR_GET_CHILD_SUBREAPER, 'void *', out) === -1) {
    throw new SyscallError('prctl', koffi.errno(), 'PR_GET_CHILD_SUBREAPER');
  }
  return out.readInt32LE(0) !== 0;
}

/**
 * waitpid(pid, WNOHANG): the status if `pid` (our child) has ended and is now
 * reaped, null if it is still running. Throws ECHILD if `pid` is not our child.
 */
export function reap(pid: number): WaitStatus | null {
  const status = new Int32Array(1);
  const r = c.waitpid(pid, status, WNOHANG);
  if (r === -1) throw new SyscallError('waitpid', koffi.errno(), `pid ${pid}`);
  return r === 0 ? null : decodeWaitStatus(status[0]!);
}
