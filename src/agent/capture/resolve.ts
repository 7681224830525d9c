/**
 * After all tables are read: let each file's type link its state to the other captured
 * files it names by fd number (FileTypeOps.resolve; an epoll's targets), once per file,
 * with the table of the first process found holding it.
 */
import { opsOf } from '../filetypes/index.js';
import type { Checkpoint, FileRecord } from '../model.js';

export function resolveReferences(cp: Checkpoint): void {
  const byObjref = new Map<number, FileRecord>(cp.files.map((f) => [f.objref, f]));
  const done = new Set<number>();
  for (const table of cp.tables) {
    let fdToFile: Map<number, FileRecord | undefined> | undefined;
    for (const entry of table.fds) {
      const file = byObjref.get(entry.file);
      if (!file || done.has(file.objref)) continue;
      const resolve = opsOf(file.type).resolve;
      if (!resolve) continue;
      done.add(file.objref);
      fdToFile ??= new Map(table.fds.map((e) => [e.fd, byObjref.get(e.file)]));
      resolve(file, fdToFile);
    }
  }
}
