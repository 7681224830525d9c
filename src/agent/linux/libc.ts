/**
 * The one place that loads libc. Everything here is untyped FFI; the typed
 * wrappers beside this file are what the rest of fdckpt calls.
 * ADR 0001 says why koffi and not a Node-API addon.
 */
import koffi from 'koffi';
import { SYS, type SyscallName } from './arch/x86_64.js';
import { SyscallError } from './errors.js';

if (process.platform !== 'linux' || process.arch !== 'x64') {
  // Only the syscall numbers and registers are arch-specific; they live in ./arch.
  throw new Error(`fdckpt's engine supports linux/x64 only (this is ${process.platform}/${process.arch})`);
}

const lib = koffi.load('libc.so.6');

/** Variadic `long syscall(long, ...)`; each argument is passed as a (type, value) pair. */
const rawSyscall = lib.func('long syscall(long number, ...)') as (...args: unknown[]) => number | bigint;

/** A C argument: koffi needs the C type of every variadic argument. */
export type Arg = ['int' | 'uint' | 'long' | 'ulong' | 'void *', number | bigint | Buffer | null];

/**
 * Calls syscall `name`; on -1 throws a SyscallError naming `object`.
 * Returns the result as a number (all results used here fit in 53 bits).
 */
export function sys(name: SyscallName, object: string, ...args: Arg[]): number {
  const flat: unknown[] = [SYS[name]];
  for (const [type, value] of args) flat.push(type, value);
  const result = Number(rawSyscall(...flat));
  if (result === -1) throw new SyscallError(name, koffi.errno(), object);
  return result;
}

/** Like sys() but returns -errno instead of throwing, for hot paths that expect failures. */
export function sysRaw(name: SyscallName, ...args: Arg[]): number {
  const flat: unknown[] = [SYS[name]];
  for (const [type, value] of args) flat.push(type, value);
  const result = Number(rawSyscall(...flat));
  return result === -1 ? -koffi.errno() : result;
}

/**
 * The libc functions several modules call, each declared once (a koffi declaration is
 * a prototype parsed and a trampoline made). They return the C result; the caller checks
 * it and names what failed (SyscallError with koffi.errno()).
 */
export const libc = {
  close: lib.func('int close(int fd)') as (fd: number) => number,
  read: lib.func('long read(int fd, _Out_ uint8_t *buf, size_t n)') as (
    fd: number,
    buf: Buffer,
    n: number,
  ) => number,
  /** Variadic: pass the third argument as a (type, value) pair, e.g. `fcntl(fd, cmd, 'int', n)`. */
  fcntl: lib.func('int fcntl(int fd, int cmd, ...)') as (...a: unknown[]) => number,
  openat: lib.func('int openat(int dirfd, const char *path, int flags)') as (
    dirfd: number,
    path: string,
    flags: number,
  ) => number,
  readlinkat: lib.func('long readlinkat(int dirfd, const char *path, _Out_ uint8_t *buf, size_t n)') as (
    dirfd: number,
    path: string,
    buf: Buffer,
    n: number,
  ) => number,
  fstat: lib.func('int fstat(int fd, _Out_ uint8_t *buf)') as (fd: number, buf: Buffer) => number,
  socket: lib.func('int socket(int domain, int type, int protocol)') as (
    domain: number,
    type: number,
    protocol: number,
  ) => number,
  waitpid: lib.func('int waitpid(int pid, _Out_ int *status, int options)') as (
    pid: number,
    status: Int32Array,
    options: number,
  ) => number,
};

export { koffi, lib };
