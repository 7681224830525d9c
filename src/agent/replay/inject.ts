/**
 * Runs a plan inside a tracee stopped at its exec stop, then detaches.
 *
 * 1. Patch `int3; syscall; int3` over the entry point (rip) and continue: the
 *    first int3 stops the new program right after execve returned.
 * 2. Inject mmap through the patched `syscall` for a scratch mapping: the stub's
 *    page, the step table, the data, then one struct stat per by-path file (the
 *    stat area, left as the mapping's zeros). Write stub, table and data into it
 *    (/proc/PID/mem) and make the stub's page read+exec (the rest stays
 *    read+write, for results).
 * 3. batched: run the stub, which runs every step and stops at an int3;
 *    unbatched: run each step as its own injected syscall (one round trip each).
 *    A plan with fills (fill.ts) runs in segments, the agent's writes between them.
 *    Either way each fd opened by path is fstat'ed by the target itself once it is
 *    at its final number (a step of the plan), into the stat area.
 * 4. Read the stat area back in one /proc/PID/mem read and compare each with what
 *    validation saw (verifyOpened): a path swapped after the check is caught here,
 *    before the program runs.
 * 5. munmap, restore the original bytes and registers, PTRACE_DETACH.
 * Any failure throws (a ReplayError naming the fd when a step failed); the
 * caller kills the tracee. All ptrace calls happen on the calling thread.
 */
import { SYS } from '../linux/arch/x86_64.js';
import {
  ARG_REGS,
  BATCH_STUB,
  ENTRY_EXPECT_OFFSET,
  ENTRY_PATCH,
  ENTRY_RESULT_OFFSET,
  ENTRY_SIZE,
  ENTRY_SYSCALL_OFFSET,
  REG,
  REGS_SIZE,
  USER_CS_64,
  entryArgOffset,
  getReg,
  setReg,
} from '../linux/arch/x86_64-regs.js';
import { errnoName } from '../linux/errors.js';
import { STAT_SIZE, S_IFMT, statIdentity } from '../linux/stat.js';
import { TraceeMemory, ptraceCont, ptraceDetach, ptraceGetRegs, ptraceSetRegs } from '../linux/ptrace.js';
import { waitPid } from '../linux/wait.js';
import { writeWord, type Plan } from '../replay-steps/builder.js';
import { ReplayError } from '../replay-steps/errors.js';
import { runFill } from './fill.js';

const SIGTRAP = 5;
const PAGE = 4096;
/** The stub has the first page to itself: it becomes read+exec, the rest stays read+write. */
const TABLE_OFFSET = PAGE;
const PROT_RW = 3;
const PROT_RX = 5;
const MAP_PRIVATE_ANONYMOUS = 0x22;

/** Continues the tracee until it stops with SIGTRAP (an int3); other signals are passed on. */
function contUntilTrap(pid: number): void {
  let signal = 0;
  for (;;) {
    ptraceCont(pid, signal);
    const st = waitPid(pid);
    if (st.kind === 'exited') throw new Error(`target pid ${pid} exited with ${st.code} during restore`);
    if (st.kind === 'signaled')
      throw new Error(`target pid ${pid} was killed by signal ${st.signal} during restore`);
    if (st.signal === SIGTRAP && st.event === 0) return;
    // A group-stop or event stop carries no signal to deliver; a real signal is passed on.
    signal = st.event === 0 && st.signal !== SIGTRAP ? st.signal : 0;
  }
}

class Injector {
  private readonly mem: TraceeMemory;
  private readonly entry: bigint;
  private readonly original: Buffer;
  /** The program's registers right after execve (rip at its entry point). */
  private readonly saved = Buffer.alloc(REGS_SIZE);
  private readonly work = Buffer.alloc(REGS_SIZE);

  constructor(readonly pid: number) {
    this.mem = new TraceeMemory(pid);
    ptraceGetRegs(pid, this.saved);
    if (getReg(this.saved, REG.cs) !== USER_CS_64) {
      this.mem.close();
      throw new Error(`target pid ${pid} is not a 64-bit program: only x86-64 targets can be restored into`);
    }
    this.entry = getReg(this.saved, REG.rip);
    this.original = this.mem.read(this.entry, ENTRY_PATCH.length);
    this.mem.write(this.entry, ENTRY_PATCH);
    contUntilTrap(pid);
    ptraceGetRegs(pid, this.saved);
    setReg(this.saved, REG.rip, this.entry);
  }

  /** One syscall through the patched entry point: one ptrace round trip. */
  syscall(nr: number, args: readonly bigint[]): bigint {
    this.saved.copy(this.work);
    setReg(this.work, REG.rax, BigInt(nr));
    args.forEach((a, i) => setReg(this.work, ARG_REGS[i]!, a));
    setReg(this.work, REG.rip, this.entry + ENTRY_SYSCALL_OFFSET);
    ptraceSetRegs(this.pid, this.work);
    contUntilTrap(this.pid);
    ptraceGetRegs(this.pid, this.work);
    return getReg(this.work, REG.rax);
  }

  /** Runs the batch stub over `count` entries at `table`; returns the failed entry index or -1. */
  runStub(stub: bigint, table: bigint, count: number): number {
    this.saved.copy(this.work);
    setReg(this.work, REG.rip, stub);
    setReg(this.work, REG.rbx, table);
    setReg(this.work, REG.r12, BigInt(count));
    ptraceSetRegs(this.pid, this.work);
    contUntilTrap(this.pid);
    ptraceGetRegs(this.pid, this.work);
    if (getReg(this.work, REG.r12) === 0n) return -1;
    return Number((getReg(this.work, REG.rbx) - table) / BigInt(ENTRY_SIZE));
  }

  write(address: bigint, data: Buffer): void {
    this.mem.write(address, data);
  }

  read(address: bigint, length: number): Buffer {
    return this.mem.read(address, length);
  }

  /** Puts the program back as execve left it and lets it run. */
  finish(): void {
    this.mem.write(this.entry, this.original);
    this.mem.close();
    ptraceSetRegs(this.pid, this.saved);
    ptraceDetach(this.pid, 0);
  }

  close(): void {
    this.mem.close();
  }
}

const SYSCALL_NAMES = new Map<number, string>(Object.entries(SYS).map(([name, nr]) => [nr, name]));

/** Where the parts of the scratch mapping go, in bytes from its start. */
interface Layout {
  dataOffset: number;
  statOffset: number;
  /** Of the mapping: whole pages. */
  size: number;
}

function layoutOf(plan: Plan): Layout {
  const dataOffset = TABLE_OFFSET + ((plan.table.length + 63) & ~63);
  const statOffset = dataOffset + ((plan.data.length + 63) & ~63);
  const statBytes = plan.checks.length * STAT_SIZE;
  return { dataOffset, statOffset, size: Math.ceil((statOffset + statBytes) / PAGE) * PAGE };
}

/** The plan's table with every data and stat argument turned into an address in the target. */
function relocate(plan: Plan, base: number, layout: Layout, pid: number): Buffer {
  const table = Buffer.from(plan.table);
  const dataBase = base + layout.dataOffset;
  const statBase = base + layout.statOffset;
  for (const at of plan.relocs) writeWord(table, at, dataBase + table.readUInt32LE(at));
  for (const at of plan.statRelocs) writeWord(table, at, statBase + table.readUInt32LE(at));
  for (const at of plan.pidSlots) writeWord(table, at, pid);
  return table;
}

function stepError(plan: Plan, table: Buffer, index: number, result: bigint): ReplayError {
  const at = index * ENTRY_SIZE;
  const name = SYSCALL_NAMES.get(table.readUInt32LE(at)) ?? `syscall ${table.readUInt32LE(at)}`;
  const expect = table.readBigInt64LE(at + ENTRY_EXPECT_OFFSET);
  const owner = plan.owners[index]!;
  const why =
    result < 0n && result >= -4095n
      ? `${errnoName(Number(-result))} (${name} in the target)`
      : `${name} returned ${result}, expected ${expect}`;
  return new ReplayError(owner.fd < 0 ? undefined : owner.fd, owner.path, why);
}

/** One round trip per step: the unbatched mode. Returns the failed step and its result, or null. */
function runEach(
  inj: Injector,
  table: Buffer,
  from: number,
  to: number,
): { index: number; result: bigint } | null {
  const args: bigint[] = new Array<bigint>(6);
  for (let i = from; i < to; i++) {
    const at = i * ENTRY_SIZE;
    for (let a = 0; a < 6; a++) args[a] = table.readBigInt64LE(at + entryArgOffset(a));
    const result = inj.syscall(table.readUInt32LE(at), args);
    const expect = table.readBigInt64LE(at + ENTRY_EXPECT_OFFSET);
    const bad = expect === -1n ? result < 0n && result >= -4095n : result !== expect;
    if (bad) return { index: i, result };
  }
  return null;
}

/**
 * Validation checked each path before the target opened it; a path swapped in
 * between (a symlink, another file renamed over it) would be opened unseen. The
 * target is still stopped, so this is the last moment to refuse: each fd opened by
 * path must hold the very file (device, inode, file type) validation saw. `stats`
 * is the plan's stat area as the target's own fstat steps filled it (check k at
 * k × STAT_SIZE), decoded as validation's stat was (linux/stat.ts statIdentity).
 */
export function verifyOpened(plan: Plan, stats: Buffer): void {
  plan.checks.forEach((c, k) => {
    const st = statIdentity(stats, k * STAT_SIZE);
    if (st.dev !== c.dev || st.ino !== c.ino || (st.mode & S_IFMT) !== c.kind) {
      const kind = (st.mode & S_IFMT) === c.kind ? '' : `, st_mode 0o${(st.mode & S_IFMT).toString(8)}`;
      throw new ReplayError(
        c.fd,
        c.path,
        `opened another file than was checked (dev:ino ${st.dev}:${st.ino}${kind}, checked ${c.dev}:${c.ino}): the path changed during restore`,
      );
    }
  });
}

/** Figures from one injection. */
export interface InjectStats {
  steps: number;
  /** Wall time from the exec stop to the detach, in ms. */
  ms: number;
  /** Of which: running the steps in the target (the stub, or the round trips), in ms. */
  runMs: number;
  /**
   * Of which: reading back the target's fstat of each fd opened by path and comparing
   * it with validation (verifyOpened), in ms. The fstats themselves ran in `runMs`.
   */
  verifyMs: number;
  /** Number of fds opened by path whose fstat, made by the target, was compared with validation. */
  checked: number;
}

/**
 * Runs `plan` in tracee `pid`, which must be stopped at its PTRACE_EVENT_EXEC
 * stop, and detaches from it. Throws on the first failed step.
 */
export function runPlan(pid: number, plan: Plan, batch: boolean): InjectStats {
  const t0 = process.hrtime.bigint();
  const inj = new Injector(pid);
  let ok = false;
  let runMs = 0;
  let verifyMs = 0;
  try {
    const layout = layoutOf(plan);
    const { dataOffset, size } = layout;
    const base = inj.syscall(SYS.mmap, [
      0n,
      BigInt(size),
      BigInt(PROT_RW),
      BigInt(MAP_PRIVATE_ANONYMOUS),
      -1n,
      0n,
    ]);
    if (base < 0n && base >= -4095n)
      throw new Error(`mmap(${size} bytes) in target pid ${pid}: ${errnoName(Number(-base))}`);
    const table = relocate(plan, Number(base), layout, pid); // user addresses are below 2^47
    const blob = Buffer.alloc(dataOffset + plan.data.length);
    BATCH_STUB.copy(blob, 0);
    table.copy(blob, TABLE_OFFSET);
    plan.data.copy(blob, dataOffset);
    inj.write(base, blob);
    // Never writable and executable at once (W^X policies refuse that).
    const prot = inj.syscall(SYS.mprotect, [base, BigInt(PAGE), BigInt(PROT_RX)]);
    if (prot !== 0n) throw new Error(`mprotect in target pid ${pid}: ${errnoName(Number(-prot))}`);
    const tRun = process.hrtime.bigint();
    // The steps run in segments, with the agent's fills between them (one more stop each).
    let from = 0;
    for (let k = 0; k <= plan.fills.length; k++) {
      const fill = plan.fills[k];
      const to = fill?.step ?? plan.count;
      if (to > from && batch) {
        const first = base + BigInt(TABLE_OFFSET + from * ENTRY_SIZE);
        const failed = inj.runStub(base, first, to - from);
        if (failed >= 0) {
          const at = first + BigInt(failed * ENTRY_SIZE + ENTRY_RESULT_OFFSET);
          throw stepError(plan, table, from + failed, inj.read(at, 8).readBigInt64LE(0));
        }
      } else if (to > from) {
        const failed = runEach(inj, table, from, to);
        if (failed) throw stepError(plan, table, failed.index, failed.result);
      }
      if (fill) runFill(pid, fill);
      from = to;
    }
    runMs = Number(process.hrtime.bigint() - tRun) / 1e6;
    const tVerify = process.hrtime.bigint();
    if (plan.checks.length > 0)
      verifyOpened(plan, inj.read(base + BigInt(layout.statOffset), plan.checks.length * STAT_SIZE));
    verifyMs = Number(process.hrtime.bigint() - tVerify) / 1e6;
    inj.syscall(SYS.munmap, [base, BigInt(size)]);
    ok = true;
  } finally {
    if (ok) inj.finish();
    else inj.close();
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { steps: plan.count, ms, runMs, verifyMs, checked: plan.checks.length };
}
