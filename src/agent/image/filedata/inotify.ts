/**
 * inotify: watch count u32, then per watch: wd i32, ino u64, sdev u64, mask u32, ignored
 * mask u32, and from version 4 the watched file's handle, optional<type i32, bytes>.
 */
import type { InotifyWatch } from '../../filetypes/inotify.js';
import { RecordViolation } from '../errors.js';
import { WATCH_HANDLE_VERSION } from '../format.js';
import type { FileDataCodec } from './types.js';

const WATCH_BYTES = 4 + 8 + 8 + 4 + 4;
/** MAX_HANDLE_SZ (linux/exportfs.h): a longer handle is no kernel's. */
const MAX_HANDLE_BYTES = 128;

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
      w.bool(`watches[${i}].handle present`, x.handle !== undefined);
      if (x.handle) {
        w.i32(`watches[${i}].handle.type`, x.handle.type);
        w.blob(`watches[${i}].handle.bytes`, x.handle.bytes);
      }
    });
  },
  decode(r, version) {
    const withHandles = version >= WATCH_HANDLE_VERSION;
    const n = r.count('watches', WATCH_BYTES + (withHandles ? 1 : 0));
    const watches: InotifyWatch[] = [];
    for (let i = 0; i < n; i++) {
      const watch: InotifyWatch = {
        wd: r.i32(`watches[${i}].wd`),
        ino: r.u64n(`watches[${i}].ino`),
        sdev: r.u64n(`watches[${i}].sdev`),
        mask: r.u32(`watches[${i}].mask`),
        ignoredMask: r.u32(`watches[${i}].ignoredMask`),
      };
      if (withHandles && r.bool(`watches[${i}].handle present`)) {
        const type = r.i32(`watches[${i}].handle.type`);
        const bytes = r.blob(`watches[${i}].handle.bytes`);
        if (bytes.length === 0 || bytes.length > MAX_HANDLE_BYTES) {
          throw new RecordViolation(
            `field watches[${i}].handle.bytes: ${bytes.length} bytes, a file handle has 1 to ${MAX_HANDLE_BYTES}`,
          );
        }
        watch.handle = { type, bytes };
      }
      watches.push(watch);
    }
    return { type: 'inotify', watches };
  },
};
