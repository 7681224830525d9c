/** Directories (opendir, O_DIRECTORY, O_PATH handles on a directory). */
import { planByPath } from '../replay/by-path.js';
import type { FileTypeOps } from './types.js';

export const directory = {
  type: 'directory',
  detectTier: 'mode',
  detect: (link, stat) => link.startsWith('/') && stat.isDirectory(),
  checkpoint: () => ({ type: 'directory' }),
  collect: () => [],
  restore: (unit, ctx) => planByPath(unit, ctx.builder),
} satisfies FileTypeOps<'directory'>;
