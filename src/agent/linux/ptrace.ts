/**
 * ptrace(2) bindings for replay and for capture's freeze of --pid targets. All
 * requests must come from the thread that attached; koffi calls are synchronous,
 * so the caller's (main) thread is it.
 */
import fs from 'node:fs';
import { lib, koffi } from './libc.js';
import { SyscallError } from './errors.js';

// glibc declares ptrace variadic; on x86-64 integer arguments travel in the same
// registers either way, so fixed prototypes are ABI-compatible and cheaper in koffi.
const c = {
  ptrace: lib.func('long ptrace(int request, int pid, uintptr_t addr, uintptr_t data)') as (
    request: number,
    pid: number,
    addr: number,
    data: number | bigint,
  ) => number | bigint,
  ptraceBuf: lib.func('long ptrace(int request, int pid, uintptr_t addr, _Inout_ uint8_t *data)') as (
    request: number,
    pid: number,
    addr: number,
    data: Buffer,
  ) => number | bigint,
  kill: lib.func('int kill(int pid, int sig)') as (pid: number, sig: number) => number,
  // union sigval is 8 bytes, INTEGER class on x86-64: passed in a register like a long.
  sigqueue: lib.func('int sigqueue(int pid, int sig, intptr_t value)') as (
    pid: number,
    sig: number,
    value: number,
  ) => number,
};

const PTRACE_CONT = 7;
const PTRACE_DETACH = 17;
const PTRACE_GETREGS = 12;
const PTRACE_SETREGS = 13;
const PTRACE_SEIZE = 0x4206;
const PTRACE_INTERRUPT = 0x4207;

/** Options for PTRACE_SEIZE. */
export const PTRACE_O = {
  TRACEEXEC: 0x10,
  EXITKILL: 0x100000,
} as const;

/** The event number in a PTRACE_EVENT stop (status >> 16). */
export const PTRACE_EVENT_EXEC = 4;
/** The event of a PTRACE_INTERRUPT stop or of a group stop of a seized tracee. */
export const PTRACE_EVENT_STOP = 128;

function check(result: number | bigint, request: string, pid: number): void {
  if (Number(result) === -1) throw new SyscallError('ptrace', koffi.errno(), `${request}, pid ${pid}`);
}

/** PTRACE_SEIZE: attach without stopping the tracee. */
export function ptraceSeize(pid: number, options: number): void {
  check(c.ptrace(PTRACE_SEIZE, pid, 0, options), 'PTRACE_SEIZE', pid);
}

/** PTRACE_INTERRUPT: stop a seized tracee (wait for the stop afterwards). */
export function ptraceInterrupt(pid: number): void {
  check(c.ptrace(PTRACE_INTERRUPT, pid, 0, 0), 'PTRACE_INTERRUPT', pid);
}

/** PTRACE_CONT from a stop, delivering `signal` (0: none). */
export function ptraceCont(pid: number, signal = 0): void {
  check(c.ptrace(PTRACE_CONT, pid, 0, signal), 'PTRACE_CONT', pid);
}

/** PTRACE_DETACH from a stop, delivering `signal` (0: none). */
export function ptraceDetach(pid: number, signal = 0): void {
  check(c.ptrace(PTRACE_DETACH, pid, 0, signal), 'PTRACE_DETACH', pid);
}

/** PTRACE_GETREGS into `regs` (the arch's user_regs_struct size). */
export function ptraceGetRegs(pid: number, regs: Buffer): void {
  check(c.ptraceBuf(PTRACE_GETREGS, pid, 0, regs), 'PTRACE_GETREGS', pid);
}

/** PTRACE_SETREGS from `regs`. */
export function ptraceSetRegs(pid: number, regs: Buffer): void {
  check(c.ptraceBuf(PTRACE_SETREGS, pid, 0, regs), 'PTRACE_SETREGS', pid);
}

/** kill(2). */
export function killPid(pid: number, signal: number): void {
  if (c.kill(pid, signal) === -1)
    throw new SyscallError('kill', koffi.errno(), `pid ${pid}, signal ${signal}`);
}

/** sigqueue(3): `signal` with an int value the receiver reads from si_value (fdckpt-hold --listen-fds). */
export function sigqueuePid(pid: number, signal: number, value: number): void {
  if (c.sigqueue(pid, signal, value) === -1)
    throw new SyscallError('sigqueue', koffi.errno(), `pid ${pid}, signal ${signal}, value ${value}`);
}

/**
 * A tracee's memory through /proc/PID/mem. Writes go through even to read-only
 * (text) pages, as for a debugger's breakpoint, because we are its tracer.
 */
export class TraceeMemory {
  private readonly fd: number;

  constructor(readonly pid: number) {
    this.fd = fs.openSync(`/proc/${pid}/mem`, 'r+');
  }

  write(address: bigint, data: Buffer): void {
    let done = 0;
    while (done < data.length) {
      const n = fs.writeSync(this.fd, data, done, data.length - done, Number(address) + done);
      if (n <= 0) throw new Error(`write(/proc/${this.pid}/mem at 0x${address.toString(16)}): short write`);
      done += n;
    }
  }

  read(address: bigint, length: number): Buffer {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, done, length - done, Number(address) + done);
      if (n <= 0) throw new Error(`read(/proc/${this.pid}/mem at 0x${address.toString(16)}): short read`);
      done += n;
    }
    return buf;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
