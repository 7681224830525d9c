/** tty / pty: tty index u32, master u8 (0/1). */
import type { FileDataCodec } from './types.js';

export const tty: FileDataCodec<'tty'> = {
  type: 'tty',
  id: 8,
  encode(w, d) {
    w.u32('index', d.index);
    w.bool('master', d.master);
  },
  decode(r) {
    return { type: 'tty', index: r.u32('index'), master: r.bool('master') };
  },
};
