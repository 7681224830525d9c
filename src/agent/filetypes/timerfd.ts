/** timerfd: clock, expirations not yet read, settime flags, value and interval (fdinfo). */
import { fdinfoField } from '../capture/fdinfo.js';
import type { Fdinfo } from '../capture/fdinfo.js';
import type { FileTypeOps } from './types.js';

/** `it_value: (1, 999)` → seconds and nanoseconds as one bigint of nanoseconds. */
function timespec(info: Fdinfo, key: string): bigint {
  const m = /\((\d+),\s*(\d+)\)/.exec(fdinfoField(info, key) ?? '');
  return m ? BigInt(m[1]!) * 1_000_000_000n + BigInt(m[2]!) : 0n;
}

export const timerfd = {
  type: 'timerfd',
  restorable: false,
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
} satisfies FileTypeOps<'timerfd'>;
