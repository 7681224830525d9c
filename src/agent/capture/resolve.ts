/**
 * After all tables are read: point each epoll registration at the captured
 * file it watches. The kernel reports the fd number used at EPOLL_CTL_ADD and
 * the target's inode; the registration is found again if that fd of the epoll
 * owner's table still refers to a file with that inode.
 */
import type { Checkpoint, FileRecord } from '../model.js';

export function resolveEpollTargets(cp: Checkpoint): void {
  const byObjref = new Map<number, FileRecord>(cp.files.map((f) => [f.objref, f]));
  const done = new Set<number>();
  for (const table of cp.tables) {
    const fdToFile = new Map<number, FileRecord | undefined>(
      table.fds.map((e) => [e.fd, byObjref.get(e.file)]),
    );
    for (const entry of table.fds) {
      const file = byObjref.get(entry.file);
      if (!file || file.data.type !== 'eventpoll' || done.has(file.objref)) continue;
      done.add(file.objref);
      for (const target of file.data.targets) {
        const candidate = fdToFile.get(target.tfd);
        if (candidate && candidate.ino === target.ino) target.file = candidate.objref;
      }
    }
  }
}
