/** inotify: watch count u32, then per watch: wd i32, ino u64, sdev u64, mask u32, ignored mask u32. */
import type { InotifyWatch } from '../../model.js';
import type { FileDataCodec } from './types.js';

const WATCH_BYTES = 4 + 8 + 8 + 4 + 4;

export const inotify: FileDataCodec<'inotify'> = {
  type: 'inotify',
  id: 12,
  encode(w, d) {
    w.u32('watches', d.watches.length);
    d.watches.forEach((x, i) => {
      w.i32(`watches[${i}].wd`, x.wd);
      w.u64n(`watches[${i}].ino`, x.ino);
      w.u64n(`watches[${i}].sdev`, x.sdev);
      w.u32(`watches[${i}].mask`, x.mask);
      w.u32(`watches[${i}].ignoredMask`, x.ignoredMask);
    });
  },
  decode(r) {
    const n = r.count('watches', WATCH_BYTES);
    const watches: InotifyWatch[] = [];
    for (let i = 0; i < n; i++) {
      watches.push({
        wd: r.i32(`watches[${i}].wd`),
        ino: r.u64n(`watches[${i}].ino`),
        sdev: r.u64n(`watches[${i}].sdev`),
        mask: r.u32(`watches[${i}].mask`),
        ignoredMask: r.u32(`watches[${i}].ignoredMask`),
      });
    }
    return { type: 'inotify', watches };
  },
};
