/** Directories (opendir, O_DIRECTORY, O_PATH handles on a directory). */
import { S_IFDIR } from '../linux/stat.js';
import { planByPath } from '../replay-steps/by-path.js';
import type { FileTypeOps } from './types.js';

/** A directory has no state of its own: its path, flags and offset are the file record's. */
export interface DirectoryData {
  type: 'directory';
}

declare module '../model.js' {
  interface FileDataByType {
    directory: DirectoryData;
  }
}

export const directory = {
  type: 'directory',
  readsNoCopy: true,
  detectTier: 'mode',
  detect: (link, stat) => link.startsWith('/') && stat.isDirectory(),
  checkpoint: () => ({ type: 'directory' }),
  byPath: { noun: 'a directory', accepts: (kind) => kind === S_IFDIR },
  collect: () => [],
  // The offset of a directory is its readdir position.
  restore: (unit, ctx) => planByPath(unit, ctx.builder, { seek: true }),
} satisfies FileTypeOps<'directory'>;
