/**
 * Inode-level sharing that is not a leak but worth a note: outside processes
 * that map, or hold a lock on, a regular file the pod has open.
 */
import { readdirSync } from 'node:fs';
import type { Ends } from './ends.js';
import type { PodFile } from './podview.js';
import { mappedInodes, readLocks } from './procmaps.js';
import type { Note, NoteKind, OutsideEnd } from './report.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

function procPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .map(Number);
  } catch {
    return [];
  }
}

/** Notes for outside mappings of, and outside locks on, the pod's regular files. */
export function inodeNotes(files: Iterable<PodFile>, exclude: ReadonlySet<number>, ends: Ends): Note[] {
  const regular = new Map<string, PodFile>();
  for (const pf of files) {
    if (pf.selfKey?.startsWith('inode:') && pf.holders.length > 0 && (pf.file.mode & S_IFMT) === S_IFREG) {
      regular.set(pf.selfKey, pf);
    }
  }
  const notes: Note[] = [];
  if (regular.size === 0) return notes;
  const push = (pf: PodFile, kind: NoteKind, out: OutsideEnd, detail: string): void => {
    notes.push({
      kind,
      object: { type: pf.file.type, id: pf.file.path },
      inside: ends.inside(pf.holders[0]!),
      outside: out,
      detail,
    });
  };
  for (const pid of procPids()) {
    if (exclude.has(pid)) continue;
    for (const [key, path] of mappedInodes(pid)) {
      const pf = regular.get(key);
      if (pf) push(pf, 'mapped-outside', ends.outside(pid), `mapped outside as ${path}`);
    }
  }
  for (const lock of readLocks()) {
    const pf = regular.get(lock.key);
    if (pf && lock.pid > 0 && !exclude.has(lock.pid))
      push(pf, 'locked-outside', ends.outside(lock.pid), lock.line);
  }
  return notes;
}
