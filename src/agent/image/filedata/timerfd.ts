/** timerfd: clockid i32, ticks u64, settime flags u32, value ns u64, interval ns u64. */
import type { FileDataCodec } from './types.js';

export const timerfd: FileDataCodec<'timerfd'> = {
  type: 'timerfd',
  id: 11,
  encode(w, d) {
    w.i32('clockid', d.clockid);
    w.u64('ticks', d.ticks);
    w.u32('settimeFlags', d.settimeFlags);
    w.u64('valueNs', d.valueNs);
    w.u64('intervalNs', d.intervalNs);
  },
  decode(r) {
    return {
      type: 'timerfd',
      clockid: r.i32('clockid'),
      ticks: r.u64('ticks'),
      settimeFlags: r.u32('settimeFlags'),
      valueNs: r.u64('valueNs'),
      intervalNs: r.u64('intervalNs'),
    };
  },
};
