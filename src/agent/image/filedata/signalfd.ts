/** signalfd: signal mask u64 (bit n-1 = signal n). */
import type { FileDataCodec } from './types.js';

export const signalfd: FileDataCodec<'signalfd'> = {
  type: 'signalfd',
  id: 10,
  encode(w, d) {
    w.u64('sigmask', d.sigmask);
  },
  decode(r) {
    return { type: 'signalfd', sigmask: r.u64('sigmask') };
  },
};
