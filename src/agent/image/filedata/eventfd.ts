/** eventfd: counter u64, semaphore mode u8 (0/1). */
import type { FileDataCodec } from './types.js';

export const eventfd: FileDataCodec<'eventfd'> = {
  type: 'eventfd',
  id: 6,
  encode(w, d) {
    w.u64('count', d.count);
    w.bool('semaphore', d.semaphore);
  },
  decode(r) {
    return { type: 'eventfd', count: r.u64('count'), semaphore: r.bool('semaphore') };
  },
};
