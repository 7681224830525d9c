/**
 * The restore plan under construction: a list of syscalls for the target to
 * run, the data they point at, and a simulation of the target's fd table.
 *
 * The simulation is what makes a plan possible without round trips: the
 * target's table starts empty (the first step is close_range), and the kernel
 * always hands out the lowest free fd, so every fd number a step creates is
 * known when the plan is made. Each step states the exact result it expects;
 * the stub stops at the first step that gets anything else.
 */
import { SYS, type SyscallName } from '../linux/arch/x86_64.js';
import { ENTRY_EXPECT_OFFSET, ENTRY_SIZE, EXPECT_OK, entryArgOffset } from '../linux/arch/x86_64-regs.js';
import { STAT_SIZE } from '../linux/stat.js';
import { O, type StoredBytes } from '../model.js';

/**
 * A syscall argument: a number, the address of bytes in the plan's data area, the
 * address of a check's struct stat (Plan.statRelocs), or the target's pid (known only
 * once it is launched: written into the table at injection).
 */
export type StepArg = number | bigint | { data: number } | { stat: number } | { targetPid: true };

/** Which fd (and what) a step works for, to name it when the step fails. */
export interface StepOwner {
  fd: number;
  path: string;
}

/**
 * Bytes the agent writes into an fd of the target between two steps (a large
 * memfd's contents), so that they never pass through the plan's data area.
 */
export interface Fill {
  /** Number of steps that run before it. */
  step: number;
  /** The target's fd to write into, from offset 0. */
  fd: number;
  bytes: Buffer | StoredBytes;
  owner: StepOwner;
}

/**
 * What validation saw at a path the target then opens by that path: once the fd is in
 * place the target fstat's it into the plan's stat area (one step), and after the steps
 * the agent compares the result with this (inject.ts verifyOpened), which closes the
 * window between the check and the target's openat.
 */
export interface OpenCheck {
  /** The fd the file ends at (its unit's first target; the others are dups of it). */
  fd: number;
  path: string;
  dev: number;
  ino: number;
  /** st_mode & S_IFMT as validation saw it. */
  kind: number;
}

/**
 * A complete plan, already in the stub's table format (one ENTRY_SIZE entry per
 * step: nr, six args, expected result, result slot), so that nothing is
 * converted per step at injection time.
 */
export interface Plan {
  /** The step table; data arguments hold offsets into `data` until relocated. */
  table: Buffer;
  /** Number of steps. */
  count: number;
  /** Byte offsets in `table` of the words that hold a data offset (add the data address). */
  relocs: number[];
  /** Byte offsets in `table` of the words to set to the target's pid. */
  pidSlots: number[];
  /** Per step: the fd (and path) it works for. */
  owners: StepOwner[];
  data: Buffer;
  /** Writes made by the agent between steps, in step order. */
  fills: Fill[];
  /** The by-path files to check once opened, before the program runs; check k's stat is at k × STAT_SIZE. */
  checks: OpenCheck[];
  /**
   * Byte offsets in `table` of the words that hold an offset into the stat area (add its
   * address): the area follows the data, STAT_SIZE bytes per check, and the agent never
   * writes it (the fresh mapping is zeros): the target's fstat steps fill it.
   */
  statRelocs: number[];
  /** Number of fds replayed (the inherited ones, kept as the process had them, are not counted). */
  fds: number;
}

/** Writes a 64-bit two's complement word; plain numbers avoid BigInt (the common case, and faster). */
export function writeWord(buf: Buffer, at: number, value: number | bigint): void {
  if (typeof value === 'bigint') {
    buf.writeBigUInt64LE(BigInt.asUintN(64, value), at);
    return;
  }
  buf.writeUInt32LE(value >>> 0, at);
  buf.writeUInt32LE(Math.floor(value / 0x100000000) >>> 0, at + 4);
}

/** Where a file goes: its fd number and close-on-exec bit. */
export interface FdTarget {
  fd: number;
  cloexec: boolean;
}

export const AT_FDCWD = -100;
export const F_DUPFD = 0;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_SETFL = 4;
export const F_SETOWN = 8;
export const F_SETSIG = 10;
export const F_SETPIPE_SZ = 1031;
export const FD_CLOEXEC = 1;
export const SEEK_SET = 0;

/** The target's fd table as the plan leaves it so far. */
export class FdSim {
  private readonly used = new Set<number>();
  private low = 0;

  /** The fd the next fd-creating syscall will return. */
  peek(): number {
    while (this.used.has(this.low)) this.low++;
    return this.low;
  }

  /** Marks the lowest free fd used and returns it. */
  alloc(): number {
    const fd = this.peek();
    this.used.add(fd);
    return fd;
  }

  /** Marks the lowest free fd at or above `min` used and returns it (fcntl F_DUPFD's rule). */
  allocFrom(min: number): number {
    let fd = Math.max(min, this.peek());
    while (this.used.has(fd)) fd++;
    this.used.add(fd);
    return fd;
  }

  occupy(fd: number): void {
    this.used.add(fd);
  }

  free(fd: number): void {
    this.used.delete(fd);
    if (fd < this.low) this.low = fd;
  }

  has(fd: number): boolean {
    return this.used.has(fd);
  }
}

/** Accumulates steps and data for one target. */
export class PlanBuilder {
  readonly sim = new FdSim();
  private table: Buffer;
  private count = 0;
  private readonly relocs: number[] = [];
  private readonly statRelocs: number[] = [];
  private readonly pidSlots: number[] = [];
  private readonly owners: StepOwner[] = [];
  private readonly fills: Fill[] = [];
  private readonly checks: OpenCheck[] = [];
  private area: Buffer;
  private dataLength = 0;

  /** Sized up front from the expected step count and data bytes (growing copies and faults). */
  constructor(expectedSteps = 1024, expectedData = 1 << 16) {
    this.table = Buffer.alloc(ENTRY_SIZE * Math.max(16, expectedSteps));
    this.area = Buffer.alloc(Math.max(64, expectedData));
  }

  /** Adds a syscall step: its exact expected result, or 'ok' for any non-error result. */
  add(name: SyscallName, args: StepArg[], expect: number | 'ok', owner: StepOwner): void {
    if ((this.count + 1) * ENTRY_SIZE > this.table.length) {
      const bigger = Buffer.alloc(this.table.length * 2);
      this.table.copy(bigger);
      this.table = bigger;
    }
    const at = this.count * ENTRY_SIZE;
    writeWord(this.table, at, SYS[name]);
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      if (typeof arg === 'object' && 'targetPid' in arg) {
        this.pidSlots.push(at + entryArgOffset(i));
      } else if (typeof arg === 'object' && 'stat' in arg) {
        writeWord(this.table, at + entryArgOffset(i), arg.stat);
        this.statRelocs.push(at + entryArgOffset(i));
      } else if (typeof arg === 'object') {
        writeWord(this.table, at + entryArgOffset(i), arg.data);
        this.relocs.push(at + entryArgOffset(i));
      } else writeWord(this.table, at + entryArgOffset(i), arg);
    }
    writeWord(this.table, at + ENTRY_EXPECT_OFFSET, expect === 'ok' ? EXPECT_OK : expect);
    this.owners.push(owner);
    this.count++;
  }

  /** The finished plan. */
  finish(fds: number): Plan {
    const table = this.table.subarray(0, this.count * ENTRY_SIZE);
    return {
      table,
      count: this.count,
      relocs: this.relocs,
      pidSlots: this.pidSlots,
      owners: this.owners,
      data: this.data(),
      fills: this.fills,
      checks: this.checks,
      statRelocs: this.statRelocs,
      fds,
    };
  }

  /** Room for `n` more bytes in the data area (grown by doubling: 10k paths, one buffer). */
  private reserve(n: number): number {
    const offset = this.dataLength;
    const padded = (n + 7) & ~7;
    if (offset + padded > this.area.length) {
      const bigger = Buffer.alloc(Math.max(this.area.length * 2, offset + padded));
      this.area.copy(bigger, 0, 0, offset);
      this.area = bigger;
    }
    this.dataLength += padded;
    return offset;
  }

  /**
   * After the steps added so far, the agent writes `bytes` into the target's `fd` (see
   * Fill): the steps before run, then the write, then the steps after.
   */
  addFill(fd: number, bytes: Buffer | StoredBytes, owner: StepOwner): void {
    this.fills.push({ step: this.count, fd, bytes, owner });
  }

  /**
   * The target fstat's `check.fd` (call it once the fd is at its final number) into the
   * check's slot of the stat area; after the steps the agent compares it with `check`.
   */
  addCheck(check: OpenCheck, owner: StepOwner): void {
    this.add('fstat', [check.fd, { stat: this.checks.length * STAT_SIZE }], 0, owner);
    this.checks.push(check);
  }

  /** Copies bytes into the data area (8-byte aligned); the result is a step argument. */
  addData(bytes: Buffer): { data: number } {
    const offset = this.reserve(bytes.length);
    bytes.copy(this.area, offset);
    return { data: offset };
  }

  /** A NUL-terminated path in the data area (the area is zero-filled: the NUL is already there). */
  addPath(path: string): { data: number } {
    const length = Buffer.byteLength(path);
    const offset = this.reserve(length + 1);
    this.area.write(path, offset);
    return { data: offset };
  }

  /** The data area as one buffer. */
  data(): Buffer {
    return this.area.subarray(0, this.dataLength);
  }

  /**
   * Puts the open file held at `tmp` at every target fd with its cloexec bit,
   * then closes `tmp` unless it is itself a target. `tmpCloexec` says whether
   * `tmp` was created with close-on-exec.
   */
  place(tmp: number, targets: readonly FdTarget[], tmpCloexec: boolean, owner: StepOwner): void {
    let tmpIsTarget = false;
    for (const t of targets) {
      if (t.fd === tmp) {
        tmpIsTarget = true;
        if (t.cloexec !== tmpCloexec) this.add('fcntl', [tmp, F_SETFD, t.cloexec ? FD_CLOEXEC : 0], 0, owner);
        continue;
      }
      this.add('dup3', [tmp, t.fd, t.cloexec ? O.CLOEXEC : 0], t.fd, owner);
      this.sim.occupy(t.fd);
    }
    if (!tmpIsTarget) {
      this.add('close', [tmp], 0, owner);
      this.sim.free(tmp);
    }
  }

  /** Whether the fd the next creation returns is a target, and with which cloexec bit. */
  nextCloexec(targets: readonly FdTarget[]): boolean {
    const next = this.sim.peek();
    return targets.find((t) => t.fd === next)?.cloexec ?? false;
  }
}
