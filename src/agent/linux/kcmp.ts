/**
 * kcmp(2), for the hot paths: capture's dedup (a binary search per open file and
 * per fd table) and the leak check (once per candidate per binary-search step,
 * hundreds of thousands of calls on a busy host). libc's syscall() is variadic, and koffi charges per variadic
 * argument; declaring it with a fixed prototype is sound on x86-64 SysV
 * (integer arguments go in the same registers either way, and syscall() reads
 * no vector registers) and measured ~40% cheaper per call (bench/leaks).
 */
import { lib, koffi } from './libc.js';
import { SYS } from './arch/x86_64.js';
import { SyscallError } from './errors.js';

const kcmpFixed = lib.func(
  'long syscall(long number, int pid1, int pid2, int type, unsigned long idx1, unsigned long idx2)',
) as (n: number, p1: number, p2: number, type: number, i1: number, i2: number) => number | bigint;

export const KCMP_FILE = 0;
export const KCMP_FILES = 2;

/**
 * kcmp(2) of objects of `type`: 0 when they are the same, 1 or 2 as an ordering (less /
 * greater), 3 when they differ but cannot be ordered. Throws a SyscallError (ESRCH, EBADF,
 * EPERM) naming both; the message is built only then, since this runs per comparison.
 */
export function kcmp(pid1: number, pid2: number, type: number, idx1: number, idx2: number): number {
  const r = Number(kcmpFixed(SYS.kcmp, pid1, pid2, type, idx1, idx2));
  if (r === -1) throw new SyscallError('kcmp', koffi.errno(), `pid ${pid1} #${idx1}, pid ${pid2} #${idx2}`);
  return r;
}

/**
 * Orders two open files (fd1 of pid1, fd2 of pid2) the way kcmp does: 0 same
 * file, -1 / 1 before / after. Throws a SyscallError (ESRCH, EBADF, EPERM)
 * naming both fds when one is gone or not comparable.
 */
export function compareFiles(pid1: number, fd1: number, pid2: number, fd2: number): -1 | 0 | 1 {
  const r = Number(kcmpFixed(SYS.kcmp, pid1, pid2, KCMP_FILE, fd1, fd2));
  if (r === 0) return 0;
  if (r === 1) return -1;
  if (r === 2) return 1;
  if (r === -1) throw new SyscallError('kcmp', koffi.errno(), `pid ${pid1} fd ${fd1}, pid ${pid2} fd ${fd2}`);
  throw new Error(`kcmp(pid ${pid1} fd ${fd1}, pid ${pid2} fd ${fd2}): files gave no order (${r})`);
}

const kcmpSlot = lib.func(
  'long syscall(long number, int pid1, int pid2, int type, unsigned long idx1, void *slot)',
) as (n: number, p1: number, p2: number, type: number, i1: number, slot: Buffer) => number | bigint;

const KCMP_EPOLL_TFD = 7;

/**
 * kcmp(KCMP_EPOLL_TFD): is fd `fd1` of `pid1` the very file that epoll `efd`
 * of `pid2` watches as registered under target fd number `tfd`? This finds an
 * epoll's target even when no fd of the epoll's owner refers to it any more.
 * Throws a SyscallError naming both sides when a process or fd is gone; ENOENT
 * means the registration does not exist.
 */
export function isEpollTarget(pid1: number, fd1: number, pid2: number, efd: number, tfd: number): boolean {
  // struct kcmp_epoll_slot { __u32 efd; __u32 tfd; __u32 toff; }
  const slot = Buffer.alloc(12);
  slot.writeUInt32LE(efd, 0);
  slot.writeUInt32LE(tfd, 4);
  const r = Number(kcmpSlot(SYS.kcmp, pid1, pid2, KCMP_EPOLL_TFD, fd1, slot));
  if (r === -1) {
    throw new SyscallError(
      'kcmp',
      koffi.errno(),
      `KCMP_EPOLL_TFD pid ${pid1} fd ${fd1}, pid ${pid2} epoll ${efd} tfd ${tfd}`,
    );
  }
  return r === 0;
}
