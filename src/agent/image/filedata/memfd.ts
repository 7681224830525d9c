/** memfd: name string, size u64. */
import type { FileDataCodec } from './types.js';

export const memfd: FileDataCodec<'memfd'> = {
  type: 'memfd',
  id: 9,
  encode(w, d) {
    w.str('name', d.name);
    w.u64n('size', d.size);
  },
  decode(r) {
    return { type: 'memfd', name: r.str('name'), size: r.u64n('size') };
  },
};
