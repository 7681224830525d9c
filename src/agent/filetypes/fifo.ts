/** Named pipes: reopened by path. Readers and writers elsewhere share the FIFO's inode. */
import { planByPath } from '../replay/by-path.js';
import type { FileTypeOps } from './types.js';

export const fifo = {
  type: 'fifo',
  detectTier: 'mode',
  detect: (link, stat) => link.startsWith('/') && stat.isFIFO(),
  checkpoint: () => ({ type: 'fifo' }),
  collect: (file) => [{ kind: 'inode', id: `${file.dev}:${file.ino}`, via: 'fifo peers' }],
  restore: (unit, ctx) => planByPath(unit, ctx.builder),
} satisfies FileTypeOps<'fifo'>;
