/** timerfd: clock, expirations not yet read, settime flags, value and interval (fdinfo). */
import { fdinfoField } from '../procfs/fdinfo.js';
import type { Fdinfo } from '../procfs/fdinfo.js';
import { clockNowNs } from '../linux/clock.js';
import { O } from '../model.js';
import { ownerOf } from '../replay-steps/by-path.js';
import { ReplayError } from '../replay-steps/errors.js';
import type { PlanContext } from '../replay-steps/types.js';
import { byAnonLink } from './leak-identity.js';
import type { FileTypeOps, RestoreUnitOf } from './types.js';

/** A timerfd's state in the model. */
export interface TimerfdData {
  type: 'timerfd';
  clockid: number;
  ticks: bigint;
  settimeFlags: number;
  valueNs: bigint;
  intervalNs: bigint;
}

declare module '../model.js' {
  interface FileDataByType {
    timerfd: TimerfdData;
  }
}

/** `it_value: (1, 999)` → seconds and nanoseconds as one bigint of nanoseconds. */
function timespec(info: Fdinfo, key: string): bigint {
  const m = /\((\d+),\s*(\d+)\)/.exec(fdinfoField(info, key) ?? '');
  return m ? BigInt(m[1]!) * 1_000_000_000n + BigInt(m[2]!) : 0n;
}

const TFD_TIMER_ABSTIME = 1;
/** _IOW('T', 0, u64): sets the unread expiration count (CONFIG_CHECKPOINT_RESTORE, as CRIU uses it). */
const TFD_IOC_SET_TICKS = 0x40085400;
const NS = 1_000_000_000n;

/** struct itimerspec: interval then value, each (tv_sec, tv_nsec). */
function itimerspec(intervalNs: bigint, valueNs: bigint): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigInt64LE(intervalNs / NS, 0);
  b.writeBigInt64LE(intervalNs % NS, 8);
  b.writeBigInt64LE(valueNs / NS, 16);
  b.writeBigInt64LE(valueNs % NS, 24);
  return b;
}

/** CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM (timerfd_create(2)). */
const TIMERFD_CLOCKS: readonly number[] = [0, 1, 7, 8, 9];

function nowOn(clockid: number, owner: { fd: number; path: string }): bigint {
  try {
    return clockNowNs(clockid);
  } catch (err) {
    throw new ReplayError(owner.fd, owner.path, (err as Error).message);
  }
}

/**
 * timerfd_create on the saved clock, then the timer armed again and the
 * unread expirations put back. fdinfo shows the time *remaining* at capture
 * (not the deadline): the restored timer fires that long after the restore,
 * as CRIU does. An absolute timer (TFD_TIMER_ABSTIME, possibly with
 * TFD_TIMER_CANCEL_ON_SET) stays absolute: now on its clock + the remainder.
 */
function restoreTimerfd(unit: RestoreUnitOf<'timerfd'>, ctx: PlanContext): 'done' {
  const b = ctx.builder;
  const owner = ownerOf(unit);
  const { clockid, ticks, settimeFlags, valueNs, intervalNs } = unit.file.data;
  // Refused at plan time, naming the fd: the image says the clock, and a wrong one would
  // otherwise surface as a bare clock_gettime error, or fail inside the target.
  if (!TIMERFD_CLOCKS.includes(clockid)) {
    throw new ReplayError(
      owner.fd,
      owner.path,
      `timerfd clock ${clockid} is not one timerfd_create accepts (${TIMERFD_CLOCKS.join(', ')})`,
    );
  }
  const cloexec = b.nextCloexec(unit.targets);
  const tmp = b.sim.alloc();
  b.add('timerfd_create', [clockid, (unit.file.flags & O.NONBLOCK) | (cloexec ? O.CLOEXEC : 0)], tmp, owner);
  // A disarmed timer (value 0) stays disarmed: arming it with 0 would be a no-op anyway.
  if (valueNs > 0n) {
    const absolute = (settimeFlags & TFD_TIMER_ABSTIME) !== 0;
    const value = absolute ? nowOn(clockid, owner) + valueNs : valueNs;
    b.add('timerfd_settime', [tmp, settimeFlags, b.addData(itimerspec(intervalNs, value)), 0], 0, owner);
  }
  if (ticks > 0n) {
    const count = Buffer.alloc(8);
    count.writeBigUInt64LE(ticks);
    b.add('ioctl', [tmp, TFD_IOC_SET_TICKS, b.addData(count)], 0, owner);
  }
  b.place(tmp, unit.targets, cloexec, owner);
  return 'done';
}

export const timerfd = {
  type: 'timerfd',
  detectTier: 'link',
  detect: (link) => link === 'anon_inode:[timerfd]',
  checkpoint: (probe) => ({
    type: 'timerfd',
    clockid: Number(fdinfoField(probe.fdinfo, 'clockid') ?? 0),
    ticks: BigInt(fdinfoField(probe.fdinfo, 'ticks') ?? '0'),
    settimeFlags: parseInt(fdinfoField(probe.fdinfo, 'settime flags') ?? '0', 8),
    valueNs: timespec(probe.fdinfo, 'it_value'),
    intervalNs: timespec(probe.fdinfo, 'it_interval'),
  }),
  collect: () => [],
  restore: restoreTimerfd,
  leakIdentity: byAnonLink,
} satisfies FileTypeOps<'timerfd'>;
