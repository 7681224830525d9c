/** Other anonymous inode (`anon_inode:[name]`): its name string. */
import type { FileDataCodec } from './types.js';

export const anon: FileDataCodec<'anon'> = {
  type: 'anon',
  id: 13,
  encode(w, d) {
    w.str('name', d.name);
  },
  decode(r) {
    return { type: 'anon', name: r.str('name') };
  },
};
