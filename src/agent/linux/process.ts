/**
 * Typed wrappers for the process and file-descriptor syscalls the engine uses.
 * Every failure throws a SyscallError that names the call, the errno and the object.
 */
import { koffi, lib, libc, sys } from './libc.js';
import { SyscallError } from './errors.js';

const c = {
  pidfd_open: lib.func('int pidfd_open(int pid, unsigned int flags)') as (
    pid: number,
    flags: number,
  ) => number,
  pidfd_getfd: lib.func('int pidfd_getfd(int pidfd, int targetfd, unsigned int flags)') as (
    pidfd: number,
    fd: number,
    flags: number,
  ) => number,
  close: libc.close,
  fcntlInt: libc.fcntl,
  ioctl: lib.func('int ioctl(int fd, unsigned long req, ...)') as (...a: unknown[]) => number,
  tee: lib.func('long tee(int fd_in, int fd_out, size_t len, unsigned int flags)') as (
    i: number,
    o: number,
    len: number,
    flags: number,
  ) => number | bigint,
  pipe2: lib.func('int pipe2(_Out_ int *fds, int flags)') as (fds: Int32Array, flags: number) => number,
  read: libc.read,
  pread: lib.func('long pread(int fd, _Out_ uint8_t *buf, size_t n, long offset)') as (
    fd: number,
    buf: Buffer,
    n: number,
    offset: number,
  ) => number | bigint,
  getsockopt: lib.func(
    'int getsockopt(int fd, int level, int name, _Out_ void *val, _Inout_ uint32_t *len)',
  ) as (fd: number, level: number, name: number, val: Buffer, len: Uint32Array) => number,
};

function check(result: number, syscall: string, object: string): number {
  if (result === -1) throw new SyscallError(syscall, koffi.errno(), object);
  return result;
}

/** pidfd_open(2): a stable handle on `pid` that never refers to a recycled pid. */
export function pidfdOpen(pid: number, flags = 0): number {
  return check(c.pidfd_open(pid, flags), 'pidfd_open', `pid ${pid}`);
}

/**
 * pidfd_getfd(2): a new fd in this process for the *same* open file (struct file)
 * as `fd` in the target. The copy has FD_CLOEXEC set. Caller closes it.
 */
export function pidfdGetfd(pidfd: number, fd: number, pid: number): number {
  return check(c.pidfd_getfd(pidfd, fd, 0), 'pidfd_getfd', `pid ${pid}, fd ${fd}`);
}

/** close(2). */
export function closeFd(fd: number): void {
  check(c.close(fd), 'close', `fd ${fd}`);
}

const F_GETFL = 3;
const F_GETOWN_EX = 16;
const F_OWNER_TID = 0;
const F_OWNER_PID = 1;
const F_OWNER_PGRP = 2;

/** fcntl(F_GETFL) on an fd of this process. */
export function getFileFlags(fd: number): number {
  return check(c.fcntlInt(fd, F_GETFL), 'fcntl', `F_GETFL, fd ${fd}`);
}

/** Who receives SIGIO/SIGURG for this open file (fcntl F_GETOWN_EX), or null. */
export interface FileOwner {
  kind: 'tid' | 'pid' | 'pgrp';
  id: number;
}

/** fcntl(F_GETOWN_EX) on an fd of this process (typically a pidfd_getfd copy). */
const ownerBuf = Buffer.alloc(8);

export function getFileOwner(fd: number): FileOwner | null {
  const owner = ownerBuf;
  check(c.fcntlInt(fd, F_GETOWN_EX, 'void *', owner), 'fcntl', `F_GETOWN_EX, fd ${fd}`);
  const type = owner.readInt32LE(0);
  const id = owner.readInt32LE(4);
  if (id === 0) return null;
  const kind =
    type === F_OWNER_TID ? 'tid' : type === F_OWNER_PGRP ? 'pgrp' : type === F_OWNER_PID ? 'pid' : 'pid';
  return { kind, id };
}

const F_GETSIG = 11;

/** The signal sent to the owner instead of SIGIO (fcntl F_GETSIG; 0: SIGIO). */
export function getFileSignal(fd: number): number {
  return check(c.fcntlInt(fd, F_GETSIG), 'fcntl', `F_GETSIG, fd ${fd}`);
}

const FIONREAD = 0x541b;

/** Bytes waiting to be read in a pipe or socket (ioctl FIONREAD). */
export function bytesReadable(fd: number): number {
  const n = Buffer.alloc(4);
  check(c.ioctl(fd, FIONREAD, 'void *', n), 'ioctl', `FIONREAD, fd ${fd}`);
  return n.readInt32LE(0);
}

/** pipe2(2): [readEnd, writeEnd]. */
export function pipe2(flags = 0): [number, number] {
  const fds = new Int32Array(2);
  check(c.pipe2(fds, flags), 'pipe2', `flags ${flags}`);
  return [fds[0]!, fds[1]!];
}

/** tee(2): duplicate up to `len` bytes of pipe `fdIn` into pipe `fdOut` without consuming them. */
export function tee(fdIn: number, fdOut: number, len: number, flags: number): number {
  return check(Number(c.tee(fdIn, fdOut, len, flags)), 'tee', `fd ${fdIn} -> fd ${fdOut}`);
}

/** read(2) into `buf`; returns the byte count. */
export function readFd(fd: number, buf: Buffer, n = buf.length): number {
  return check(Number(c.read(fd, buf, n)), 'read', `fd ${fd}`);
}

const EINTR = 4;

/**
 * The first `size` bytes of a file through an fd of this process, with pread
 * from offset 0, so that an offset shared with the checkpointed process does
 * not move (fewer bytes if the file shrank meanwhile).
 */
export function preadAll(fd: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let done = 0;
  while (done < size) {
    const n = Number(c.pread(fd, buf.subarray(done), size - done, done));
    if (n === -1 && koffi.errno() === EINTR) continue;
    check(n, 'pread', `fd ${fd}`);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}

export const MFD_CLOEXEC = 1;

/** memfd_create(2): an anonymous file in memory, named `name` in /proc/PID/fd links. */
export function memfdCreate(name: string, flags: number): number {
  return sys('memfd_create', `memfd ${name}`, ['void *', Buffer.from(`${name}\0`)], ['uint', flags]);
}

const F_GET_SEALS = 1034;

/** fcntl(F_GET_SEALS): F_SEAL_* bits (a memfd made without MFD_ALLOW_SEALING shows F_SEAL_SEAL). */
export function getSeals(fd: number): number {
  return check(c.fcntlInt(fd, F_GET_SEALS), 'fcntl', `F_GET_SEALS, fd ${fd}`);
}

const SOL_SOCKET = 1;
export const SO_TYPE = 3;
export const SO_PROTOCOL = 38;
export const SO_DOMAIN = 39;
export const SO_ACCEPTCONN = 30;

/** getsockopt(level, name) for an int-valued option (level SOL_SOCKET by default). */
export function getSockOptInt(fd: number, name: number, level = SOL_SOCKET): number {
  const val = Buffer.alloc(4);
  const len = new Uint32Array([4]);
  check(c.getsockopt(fd, level, name, val, len), 'getsockopt', `fd ${fd}, level ${level} opt ${name}`);
  return val.readInt32LE(0);
}
