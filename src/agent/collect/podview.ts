/**
 * The pod side of the reference graph, from a capture: every open file with
 * the pod's fds that hold it, the key under which another process's fd would
 * show the same object, and the keys of the objects it references (its
 * type's collect(): a pipe's other end, a socket's peer, a pty's other side).
 */
import { statSync } from 'node:fs';
import type { Checkpoint, FileRecord } from '../model.js';
import { opsOf } from '../filetypes/index.js';
import type { ObjectRef } from '../filetypes/types.js';
import { inodeKey, ptyKey } from './keys.js';

/** An fd of a pod process. */
export interface PodFd {
  pid: number;
  fd: number;
}

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

/** Types whose files all share one anonymous inode, so only kcmp can tell them apart. */
const ANON_TYPES = new Set(['eventfd', 'eventpoll', 'signalfd', 'timerfd', 'inotify', 'anon']);

function devptsDevOf(pid: number): number {
  return statSync(`/proc/${pid}/root/dev/pts`, { throwIfNoEntry: false })?.dev ?? -1;
}

/** The key of a pty end: the devpts instance and index (a master opened via /dev/ptmx uses its opener's /dev/pts). */
function ttyKey(file: FileRecord & { data: { type: 'tty' } }, holder: PodFd): string | undefined {
  if (file.data.index < 0) return undefined;
  const dev = !file.data.master || file.path.endsWith('/pts/ptmx') ? file.dev : devptsDevOf(holder.pid);
  return ptyKey(dev, file.data.index);
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
    if (f.data.type === 'pipe') pf.selfKey = `pipe:[${f.data.pipeIno}]`;
    else if (f.data.type === 'socket') pf.selfKey = `socket:[${f.data.sockIno}]`;
    else if (f.data.type === 'tty') pf.selfKey = ttyKey(f as FileRecord & { data: { type: 'tty' } }, holder);
    else if (ANON_TYPES.has(f.type) && !f.path.startsWith('/')) pf.anonLink = f.path;
    else if (f.path.startsWith('/')) pf.selfKey = inodeKey(f.dev, f.ino);
    const refs = opsOf(f.type).collect(f);
    pf.refs = refs.map((ref) => ({ ref, key: refKey(ref, pf.selfKey) }));
  }
  return out;
}
