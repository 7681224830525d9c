/**
 * Anonymous pipes. Both ends share the pipe inode; the bytes waiting in the
 * pipe are copied without consuming them (tee into a private pipe), from the
 * read end only, because only a read end can be tee'd from.
 */
import { O } from '../model.js';
import { peekPipe } from '../linux/pipe.js';
import { bytesReadable } from '../linux/process.js';
import { F_DUPFD, F_SETFL, F_SETPIPE_SZ } from '../replay-steps/builder.js';
import { ownerOf } from '../replay-steps/by-path.js';
import type { PlanContext } from '../replay-steps/types.js';
import type { FileTypeOps, RestoreUnitOf } from './types.js';

/** A pipe end's state in the model. */
export interface PipeData {
  type: 'pipe';
  /** pipe inode: both ends of one pipe share it. */
  pipeIno: number;
  end: 'read' | 'write';
  /** Bytes waiting in the pipe when captured. */
  bufferedBytes: number;
  /** The buffered bytes themselves (only recorded from a read end, via tee). */
  buffered?: Buffer;
}

declare module '../model.js' {
  interface FileDataByType {
    pipe: PipeData;
  }
}

/** File status flags F_SETFL can change on a pipe end. */
const PIPE_SETFL = O.NONBLOCK | O.DIRECT | O.ASYNC | O.NOATIME | O.APPEND;
const PIPE_DEFAULT_SIZE = 65536;

/** One new pipe, refilled, both ends placed (an end not in the table is closed). */
function restorePipe(unit: RestoreUnitOf<'pipe'>, ctx: PlanContext): 'done' {
  const b = ctx.builder;
  const owner = ownerOf((unit.read ?? unit.write)!);
  const fds = b.addData(Buffer.alloc(8));
  const r = b.sim.alloc();
  let w = b.sim.alloc();
  b.add('pipe2', [fds, 0], 0, owner);
  const rdata = unit.read?.file.data;
  const buffered = rdata?.type === 'pipe' ? rdata.buffered : undefined;
  if (buffered && buffered.length > 0) {
    if (buffered.length > PIPE_DEFAULT_SIZE) b.add('fcntl', [w, F_SETPIPE_SZ, buffered.length], 'ok', owner);
    b.add('write', [w, b.addData(buffered), buffered.length], buffered.length, owner);
  }
  for (const [end, fd] of [
    [unit.read, r],
    [unit.write, w],
  ] as const) {
    const flags = (end?.file.flags ?? 0) & PIPE_SETFL;
    if (end && flags) b.add('fcntl', [fd, F_SETFL, flags], 0, ownerOf(end));
  }
  const readTargets = unit.read?.targets ?? [];
  const writeTargets = unit.write?.targets ?? [];
  if (readTargets.some((t) => t.fd === w)) {
    // Placing the read end would overwrite the write end before it is placed: move it
    // above every read target (the lowest free fd might be another read target).
    const above = Math.max(...readTargets.map((t) => t.fd)) + 1;
    const moved = b.sim.allocFrom(above);
    b.add('fcntl', [w, F_DUPFD, above], moved, owner);
    w = moved;
  }
  b.place(r, readTargets, false, unit.read ? ownerOf(unit.read) : owner);
  b.place(w, writeTargets, false, unit.write ? ownerOf(unit.write) : owner);
  return 'done';
}

export const pipe = {
  type: 'pipe',
  detectTier: 'link',
  detect: (link) => link.startsWith('pipe:['),
  checkpoint: (probe) => {
    const end = (probe.fdinfo.flags & O.ACCMODE) === O.WRONLY ? 'write' : 'read';
    const bufferedBytes = bytesReadable(probe.copy);
    const data = { type: 'pipe' as const, pipeIno: probe.stat.ino, end, bufferedBytes } as const;
    if (end === 'read' && bufferedBytes > 0)
      return { ...data, buffered: peekPipe(probe.copy, bufferedBytes) };
    return data;
  },
  // A read end must carry the bytes that were waiting in it, or the restored pipe would lose them.
  unrestorable: ({ data }) =>
    data.end === 'read' && data.bufferedBytes > 0 && data.buffered?.length !== data.bufferedBytes
      ? `${data.bufferedBytes} buffered bytes were not captured`
      : undefined,
  collect: (file) => [{ kind: 'pipe', id: `pipe:[${file.data.pipeIno}]`, via: 'other end' }],
  restore: restorePipe,
  leakIdentity: (file) => ({ selfKey: `pipe:[${file.data.pipeIno}]` }),
  sameObjectVia: 'other end of pipe',
} satisfies FileTypeOps<'pipe'>;
