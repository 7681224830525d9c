/** Directory: nothing beyond the common fields (path, flags, pos). */
import type { FileDataCodec } from './types.js';

export const directory: FileDataCodec<'directory'> = {
  type: 'directory',
  id: 2,
  encode() {},
  decode() {
    return { type: 'directory' };
  },
};
