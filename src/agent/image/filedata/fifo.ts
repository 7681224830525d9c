/** Named pipe: reopened by path, so nothing beyond the common fields. */
import type { FileDataCodec } from './types.js';

export const fifo: FileDataCodec<'fifo'> = {
  type: 'fifo',
  id: 3,
  encode() {},
  decode() {
    return { type: 'fifo' };
  },
};
