/**
 * memfd: name string, size u64n, seals u32, contents optional<bytes>. The
 * contents are never copied through the record buffers: written as they are,
 * and read from a large record as bytes left in the image file.
 */
import type { FileDataCodec } from './types.js';

export const memfd: FileDataCodec<'memfd'> = {
  type: 'memfd',
  id: 9,
  encode(w, d) {
    w.str('name', d.name);
    w.u64n('size', d.size);
    w.u32('seals', d.seals);
    w.bool('contents present', d.contents !== undefined);
    if (d.contents !== undefined) w.external('contents', d.contents);
  },
  decode(r) {
    const data = { type: 'memfd' as const, name: r.str('name'), size: r.u64n('size'), seals: r.u32('seals') };
    return r.bool('contents present') ? { ...data, contents: r.contents('contents') } : data;
  },
};
