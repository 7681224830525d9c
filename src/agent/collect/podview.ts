/**
 * The pod side of the reference graph, from a capture: every open file with
 * the pod's fds that hold it, the key under which another process's fd would
 * show the same object, and the keys of the objects it references (its
 * type's collect(): a pipe's other end, a socket's peer, a pty's other side).
 */
import type { Checkpoint, FileRecord } from '../model.js';
import { opsOf } from '../filetypes/index.js';
import type { HolderFd, ObjectRef } from '../filetypes/types.js';
import { byInode } from '../filetypes/leak-identity.js';
import { inodeKey } from '../procfs/keys.js';

/** An fd of a pod process. */
export type PodFd = HolderFd;

/** One open file of the pod and what identifies it and its references from outside. */
export interface PodFile {
  file: FileRecord;
  /** Every pod fd that holds it; the first is the one kcmp compares against. */
  holders: PodFd[];
  /** How an outside fd that is this very object would be keyed (undefined: anon inode, see anonLink). */
  selfKey?: string;
  /** For anonymous-inode files: the link every such file shares (`anon_inode:[eventfd]`). */
  anonLink?: string;
  /** The file's references (collect()), each with the host-scan key of its object when it has one. */
  refs: { ref: ObjectRef; key?: string }[];
}

/** Host-scan key of a collected reference, or undefined for references inside the capture ('file'). */
function refKey(ref: ObjectRef, self: string | undefined): string | undefined {
  switch (ref.kind) {
    case 'pipe':
    case 'socket':
      return ref.id;
    case 'inode': {
      const [dev, ino] = ref.id.split(':');
      return inodeKey(dev!, ino!);
    }
    case 'tty':
      // collect() names the pty by index only; the devpts instance is in selfKey.
      return self;
    case 'file':
      return undefined;
  }
}

/** The pod's open files by objref, with their holders and keys. */
export function podFiles(cp: Checkpoint): Map<number, PodFile> {
  const out = new Map<number, PodFile>();
  for (const f of cp.files) out.set(f.objref, { file: f, holders: [], refs: [] });
  for (const proc of cp.processes) {
    const table = cp.tables.find((t) => t.objref === proc.table);
    // Threads sharing a table would repeat every fd: the first task is enough.
    if (!table || cp.processes.find((p) => p.table === table.objref) !== proc) continue;
    for (const e of table.fds) out.get(e.file)?.holders.push({ pid: proc.pid, fd: e.fd });
  }
  for (const pf of out.values()) {
    const f = pf.file;
    const holder = pf.holders[0];
    if (holder === undefined) continue;
    const ops = opsOf(f.type);
    const id = ops.leakIdentity?.(f, holder) ?? byInode(f);
    pf.selfKey = id.selfKey;
    pf.anonLink = id.anonLink;
    const refs = ops.collect(f);
    pf.refs = refs.map((ref) => ({ ref, key: refKey(ref, pf.selfKey) }));
  }
  return out;
}
