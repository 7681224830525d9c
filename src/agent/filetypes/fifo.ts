/** Named pipes: reopened by path. Readers and writers elsewhere share the FIFO's inode. */
import { S_IFIFO } from '../linux/stat.js';
import { planByPath } from '../replay-steps/by-path.js';
import type { FileTypeOps } from './types.js';

/** A FIFO has no state of its own: it is reopened by path. */
export interface FifoData {
  type: 'fifo';
}

declare module '../model.js' {
  interface FileDataByType {
    fifo: FifoData;
  }
}

export const fifo = {
  type: 'fifo',
  readsNoCopy: true,
  detectTier: 'mode',
  detect: (link, stat) => link.startsWith('/') && stat.isFIFO(),
  checkpoint: () => ({ type: 'fifo' }),
  byPath: { noun: 'a fifo', accepts: (kind) => kind === S_IFIFO },
  collect: (file) => [{ kind: 'inode', id: `${file.dev}:${file.ino}`, via: 'fifo peers' }],
  // Opening one end of a fifo blocks (or fails with ENXIO) until the other end is open.
  restore: (unit, ctx) => planByPath(unit, ctx.builder, { holdOtherEnd: true }),
  sameObjectVia: 'fifo shared',
} satisfies FileTypeOps<'fifo'>;
