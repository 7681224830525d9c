/**
 * clock_gettime(2) for any clock id. Node exposes CLOCK_MONOTONIC (hrtime)
 * and a millisecond CLOCK_REALTIME only; a timerfd may run on CLOCK_BOOTTIME
 * or an alarm clock, and an absolute timer is restored against its own clock.
 */
import { lib, koffi } from './libc.js';
import { SyscallError } from './errors.js';

const clockGettime = lib.func('int clock_gettime(int clockid, _Out_ uint8_t *ts)') as (
  clockid: number,
  ts: Buffer,
) => number;

/** The current time of clock `clockid`, in nanoseconds. */
export function clockNowNs(clockid: number): bigint {
  const ts = Buffer.alloc(16);
  if (clockGettime(clockid, ts) === -1)
    throw new SyscallError('clock_gettime', koffi.errno(), `clock ${clockid}`);
  return ts.readBigInt64LE(0) * 1_000_000_000n + ts.readBigInt64LE(8);
}
