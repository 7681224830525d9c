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

export { koffi, lib };
