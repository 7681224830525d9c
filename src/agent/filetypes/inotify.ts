/** inotify instances: each watch (`inotify wd:` lines in fdinfo, hex fields). */
import type { InotifyWatch } from '../model.js';
import type { FileTypeOps } from './types.js';

// inotify wd:1 ino:2 sdev:800001 mask:fff ignored_mask:0 fhandle-bytes:8 ...
const WATCH =
  /^inotify wd:([0-9a-f]+) ino:([0-9a-f]+) sdev:([0-9a-f]+) mask:([0-9a-f]+) ignored_mask:([0-9a-f]+)/;

export const inotify = {
  type: 'inotify',
  detectTier: 'link',
  detect: (link) => link === 'anon_inode:inotify',
  checkpoint: (probe) => ({
    type: 'inotify',
    watches: probe.fdinfo.extra.flatMap((line): InotifyWatch[] => {
      const m = WATCH.exec(line);
      if (!m) return [];
      const [wd, ino, sdev, mask, ignoredMask] = m.slice(1).map((h) => parseInt(h, 16)) as [
        number,
        number,
        number,
        number,
        number,
      ];
      return [{ wd, ino, sdev, mask, ignoredMask }];
    }),
  }),
  collect: (file) =>
    file.data.watches.map((w) => ({
      kind: 'inode' as const,
      id: `${w.sdev}:${w.ino}`,
      via: `inotify wd ${w.wd}`,
    })),
} satisfies FileTypeOps<'inotify'>;
