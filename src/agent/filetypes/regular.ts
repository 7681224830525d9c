/**
 * Regular files — and character/block devices other than ttys (/dev/null,
 * /dev/urandom), and O_PATH handles on sockets: all are reopened by path with
 * their flags and offset.
 */
import { S_IFBLK, S_IFCHR, S_IFREG, S_IFSOCK } from '../linux/stat.js';
import { O } from '../model.js';
import { planByPath } from '../replay-steps/by-path.js';
import type { FileTypeOps } from './types.js';

/** A regular file's state in the model: its size when captured (restore checks it). */
export interface RegularData {
  type: 'regular';
  size: number;
}

declare module '../model.js' {
  interface FileDataByType {
    regular: RegularData;
  }
}

export const regular = {
  type: 'regular',
  readsNoCopy: true,
  detectTier: 'path',
  detect: (link, stat, fdinfo) =>
    link.startsWith('/') &&
    !link.startsWith('/memfd:') &&
    (stat.isFile() ||
      stat.isCharacterDevice() ||
      stat.isBlockDevice() ||
      (stat.isSocket() && (fdinfo.flags & O.PATH) !== 0)),
  checkpoint: (probe) => ({ type: 'regular', size: probe.stat.isFile() ? probe.stat.size : 0 }),
  byPath: {
    noun: 'a regular file or device',
    accepts: (kind, file) =>
      kind === S_IFREG ||
      kind === S_IFCHR ||
      kind === S_IFBLK ||
      (kind === S_IFSOCK && (file.flags & O.PATH) !== 0),
  },
  collect: () => [],
  restore: (unit, ctx) => planByPath(unit, ctx.builder, { seek: true }),
} satisfies FileTypeOps<'regular'>;
