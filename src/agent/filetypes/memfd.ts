/**
 * memfd_create files: name, size, seals and the whole contents (up to a
 * limit). Restore makes a new memfd with that name, refills it, puts the
 * offset and status flags back, then the seals (last: they may forbid writes).
 */
import { getSeals, preadAll } from '../linux/process.js';
import { O, type StoredBytes } from '../model.js';
import { AT_FDCWD, F_SETFL, SEEK_SET } from '../replay-steps/builder.js';
import { ownerOf } from '../replay-steps/by-path.js';
import type { PlanContext } from '../replay-steps/types.js';
import type { FileTypeOps, RestoreUnitOf } from './types.js';

/** A memfd's state in the model. */
export interface MemfdData {
  type: 'memfd';
  name: string;
  size: number;
  /** F_SEAL_* bits (F_GET_SEALS). */
  seals: number;
  /**
   * The whole contents; absent when the memfd was larger than capture copies.
   * Read from an image file, large contents stay there (StoredBytes).
   */
  contents?: Buffer | StoredBytes;
}

declare module '../model.js' {
  interface FileDataByType {
    memfd: MemfdData;
  }
}

const MEMFD = /^\/memfd:(.*) \(deleted\)$/;
const MFD_CLOEXEC = 1;
const MFD_ALLOW_SEALING = 2;
const F_ADD_SEALS = 1033;
/**
 * Contents above this are not copied (capture holds them in memory while the
 * processes are frozen, and the image carries them): such a memfd is refused
 * at capture, naming its size, unless it is ignored.
 */
export const MEMFD_CONTENTS_LIMIT = 64 << 20;
/**
 * Contents up to this go in the plan (one write step); larger ones, and those left in
 * the image file, are written by the agent between two steps (a fill: replay/fill.ts),
 * so that the plan, and the agent's memory, do not grow with them.
 */
export const MEMFD_INLINE_BYTES = 64 << 10;
/** The status flags F_SETFL can set on a memfd (it is always opened O_RDWR|O_LARGEFILE). */
const MEMFD_SETFL = O.APPEND | O.NONBLOCK | O.NOATIME | O.DIRECT | O.ASYNC;

function restoreMemfd(unit: RestoreUnitOf<'memfd'>, ctx: PlanContext): 'done' {
  const b = ctx.builder;
  const owner = ownerOf(unit);
  const { name, size, seals, contents } = unit.file.data;
  if (contents === undefined) throw new Error(`memfd ${name}: contents were not captured`);
  const cloexec = b.nextCloexec(unit.targets);
  const tmp = b.sim.alloc();
  // Always sealable, then the saved seals: F_SEAL_SEAL alone reproduces a memfd made without sealing.
  const flags = MFD_ALLOW_SEALING | (cloexec ? MFD_CLOEXEC : 0);
  b.add('memfd_create', [b.addPath(name), flags], tmp, owner);
  if (Buffer.isBuffer(contents) && contents.length > 0 && contents.length <= MEMFD_INLINE_BYTES)
    b.add('write', [tmp, b.addData(contents), contents.length], contents.length, owner);
  else if (contents.length > 0) b.addFill(tmp, contents, owner);
  // A file that grew by ftruncate past its written bytes (or shrank while copied) gets its size back.
  if (size !== contents.length) b.add('ftruncate', [tmp, size], 0, owner);
  if (seals !== 0) b.add('fcntl', [tmp, F_ADD_SEALS, seals], 0, owner);
  const status = unit.file.flags & MEMFD_SETFL;
  let fd = tmp;
  if ((unit.file.flags & O.ACCMODE) !== O.RDWR) {
    // memfd_create gives O_RDWR only: a read-only (or write-only) fd was a reopen through
    // /proc, and is made the same way, so that the program cannot write what it could only read.
    fd = b.sim.alloc();
    const path = b.addPath(`/proc/self/fd/${tmp}`);
    b.add(
      'openat',
      [AT_FDCWD, path, (unit.file.flags & O.ACCMODE) | status | (cloexec ? O.CLOEXEC : 0)],
      fd,
      owner,
    );
    b.add('close', [tmp], 0, owner);
    b.sim.free(tmp);
  } else if (status !== 0) b.add('fcntl', [tmp, F_SETFL, status], 0, owner);
  b.add('lseek', [fd, unit.file.pos, SEEK_SET], unit.file.pos, owner);
  b.place(fd, unit.targets, cloexec, owner);
  return 'done';
}

export const memfd = {
  type: 'memfd',
  detectTier: 'special',
  detect: (link, stat) => stat.isFile() && MEMFD.test(link),
  checkpoint: (probe) => {
    const size = probe.stat.size;
    const data = {
      type: 'memfd' as const,
      name: MEMFD.exec(probe.link)?.[1] ?? '',
      size,
      seals: getSeals(probe.copy),
    };
    return size > MEMFD_CONTENTS_LIMIT ? data : { ...data, contents: preadAll(probe.copy, size) };
  },
  unrestorable: (file) =>
    file.data.contents === undefined
      ? `memfd of ${file.data.size} bytes: contents above ${MEMFD_CONTENTS_LIMIT} bytes are not captured`
      : undefined,
  collect: () => [],
  restore: restoreMemfd,
} satisfies FileTypeOps<'memfd'>;
