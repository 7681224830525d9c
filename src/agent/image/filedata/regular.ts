/** Regular file: its size at capture (to notice a file changed before restore). */
import type { FileDataCodec } from './types.js';

export const regular: FileDataCodec<'regular'> = {
  type: 'regular',
  id: 1,
  encode(w, d) {
    w.u64n('size', d.size);
  },
  decode(r) {
    return { type: 'regular', size: r.u64n('size') };
  },
};
