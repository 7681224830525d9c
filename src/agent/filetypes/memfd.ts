/** memfd_create files: name and size. Contents are not saved yet, so not restorable. */
import type { FileTypeOps } from './types.js';

const MEMFD = /^\/memfd:(.*) \(deleted\)$/;

export const memfd = {
  type: 'memfd',
  restorable: false,
  detect: (link, stat) => stat.isFile() && MEMFD.test(link),
  checkpoint: (probe) => ({ type: 'memfd', name: MEMFD.exec(probe.link)?.[1] ?? '', size: probe.stat.size }),
  collect: () => [],
} satisfies FileTypeOps<'memfd'>;
