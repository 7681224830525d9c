/**
 * A checkpointed table with everything that legitimately changes across a
 * restore taken out (pids, objrefs, inode numbers), so that the table of a
 * captured process and of its restored copy compare equal.
 */
import type { Checkpoint } from '../../src/agent/model.js';

/** One fd, normalized: sharing and pipe pairing expressed as the first fd of the group. */
export interface FdView {
  fd: number;
  cloexec: boolean;
  type: string;
  flags: number;
  pos: number;
  path: string;
  /** First fd of this table on the same open file. */
  sharesWith: number;
  data: unknown;
}

/** The table of `pid` in `cp`, normalized. */
export function tableView(cp: Checkpoint, pid: number): FdView[] {
  const proc = cp.processes.find((p) => p.pid === pid)!;
  const table = cp.tables.find((t) => t.objref === proc.table)!;
  const files = new Map(cp.files.map((f) => [f.objref, f]));
  const firstFdOfFile = new Map<number, number>();
  const firstFdOfPipe = new Map<number, number>();
  for (const e of table.fds) {
    if (!firstFdOfFile.has(e.file)) firstFdOfFile.set(e.file, e.fd);
    const d = files.get(e.file)!.data;
    if (d.type === 'pipe' && !firstFdOfPipe.has(d.pipeIno)) firstFdOfPipe.set(d.pipeIno, e.fd);
  }
  return table.fds.map((e) => {
    const f = files.get(e.file)!;
    let data: unknown = f.data;
    const d = f.data;
    if (d.type === 'pipe') {
      data = { ...d, pipeIno: firstFdOfPipe.get(d.pipeIno), buffered: d.buffered?.toString('latin1') };
    } else if (d.type === 'eventpoll') {
      // fdinfo lists registrations in the kernel's tree order (by file address): compare as a set.
      data = [...d.targets]
        .sort((x, y) => x.tfd - y.tfd)
        .map((t) => ({
          ...t,
          ino: 0,
          file: t.file === undefined ? undefined : firstFdOfFile.get(t.file),
        }));
    } else if (d.type === 'eventfd') {
      data = { ...d, count: d.count.toString() };
    } else if (d.type === 'socket') {
      data = { ...d, sockIno: 0 };
    }
    // Pipes and anon inodes get new inode numbers in their link names.
    const path = f.path.replace(/^(pipe|socket):\[\d+\]$/, '$1:[]');
    return {
      fd: e.fd,
      cloexec: e.cloexec,
      type: f.type,
      flags: f.flags,
      pos: f.pos,
      path,
      sharesWith: firstFdOfFile.get(e.file)!,
      data,
    };
  });
}
