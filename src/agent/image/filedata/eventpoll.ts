/**
 * epoll instance: target count u32, then per target: tfd i32, events u32,
 * data u64, target inode u64, optional (presence byte) target file objref i32.
 * The objref must name a file record of the image (fileRefs: checked once all files are read).
 */
import type { EpollTarget } from '../../filetypes/eventpoll.js';
import type { FileDataCodec } from './types.js';

/** tfd + events + data + ino + presence byte. */
const MIN_TARGET_BYTES = 4 + 4 + 8 + 8 + 1;

export const eventpoll: FileDataCodec<'eventpoll'> = {
  type: 'eventpoll',
  id: 7,
  encode(w, d) {
    w.u32('targets', d.targets.length);
    d.targets.forEach((t, i) => {
      w.i32(`targets[${i}].tfd`, t.tfd);
      w.u32(`targets[${i}].events`, t.events);
      w.u64(`targets[${i}].data`, t.data);
      w.u64n(`targets[${i}].ino`, t.ino);
      w.bool(`targets[${i}].file present`, t.file !== undefined);
      if (t.file !== undefined) w.i32(`targets[${i}].file`, t.file);
    });
  },
  fileRefs: {
    noun: 'epoll',
    of: (d) =>
      d.targets.flatMap((t, i) => (t.file === undefined ? [] : [{ name: `target ${i}`, objref: t.file }])),
  },
  decode(r) {
    const n = r.count('targets', MIN_TARGET_BYTES);
    const targets: EpollTarget[] = [];
    for (let i = 0; i < n; i++) {
      const t: EpollTarget = {
        tfd: r.i32(`targets[${i}].tfd`),
        events: r.u32(`targets[${i}].events`),
        data: r.u64(`targets[${i}].data`),
        ino: r.u64n(`targets[${i}].ino`),
      };
      if (r.bool(`targets[${i}].file present`)) t.file = r.i32(`targets[${i}].file`);
      targets.push(t);
    }
    return { type: 'eventpoll', targets };
  },
};
