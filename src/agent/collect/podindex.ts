/**
 * The pod's side of the leak check, indexed for the host scan: which keys to
 * look for, and for each key what a hit on it means — the same object as a
 * pod file (confirmed by kcmp), an object a pod file references, the target
 * of a pod epoll that no pod fd holds, or a file a pod process maps.
 */
import { KcmpSearch } from './kcmpsearch.js';
import { mappedInodes } from './procmaps.js';
import type { PodFd, PodFile } from './podview.js';
import type { ScanTargets } from './hostscan.js';

/** An epoll registration whose target no pod fd refers to. */
export interface OrphanTarget {
  epoll: PodFile;
  tfd: number;
}

/** The pod's files indexed by host-scan key (see the module comment). */
export class PodIndex {
  /** Keys a scanned fd is looked up by, and the exact anon-inode links. */
  readonly targets: { keys: Set<string>; anonLinks: Set<string> } & ScanTargets = {
    keys: new Set(),
    anonLinks: new Set(),
  };
  /** Key → pod files that *are* that object. */
  readonly bySelf = new Map<string, PodFile[]>();
  /** Key → pod files that reference that object (a socket's peer). */
  readonly byRef = new Map<string, PodFile[]>();
  /** Key → epoll registrations whose target may be that object. */
  readonly orphans = new Map<string, OrphanTarget[]>();
  /** Inode key → a pod process that maps it. */
  readonly podMaps = new Map<string, { pid: number; path: string }>();
  /** kcmp lookups: is this outside fd one of the pod's open files? */
  readonly search = new KcmpSearch();

  constructor(
    files: Iterable<PodFile>,
    /** The fd kcmp compares against for a pod file (a pinned copy, or the pod's own). */
    readonly rep: (pf: PodFile) => PodFd,
    mappingPids: readonly number[],
  ) {
    const held = [...files].filter((pf) => pf.holders.length > 0);
    for (const pf of held) this.addFile(pf);
    for (const pf of held) this.addOrphans(pf);
    for (const pid of mappingPids) {
      for (const [key, path] of mappedInodes(pid))
        if (!this.podMaps.has(key)) this.podMaps.set(key, { pid, path });
    }
    for (const key of this.podMaps.keys()) this.targets.keys.add(key);
  }

  private addFile(pf: PodFile): void {
    const key = pf.selfKey ?? pf.anonLink;
    if (key !== undefined) {
      (pf.selfKey ? this.targets.keys : this.targets.anonLinks).add(key);
      push(this.bySelf, key, pf);
      const r = this.rep(pf);
      this.search.add(key, r.pid, r.fd, pf.file.objref);
    }
    for (const { key: rk } of pf.refs) {
      if (rk === undefined || rk === key) continue;
      this.targets.keys.add(rk);
      push(this.byRef, rk, pf);
    }
  }

  /**
   * An epoll keeps watching a file after the pod closed its fd on it, as long
   * as something else holds the file. Such targets are known by inode only:
   * looked for as a pipe or a socket, confirmed with kcmp(KCMP_EPOLL_TFD).
   */
  private addOrphans(pf: PodFile): void {
    if (pf.file.data.type !== 'eventpoll') return;
    for (const t of pf.file.data.targets) {
      if (t.file !== undefined) continue;
      for (const key of [`pipe:[${t.ino}]`, `socket:[${t.ino}]`]) {
        if (this.bySelf.has(key)) continue; // still held inside, under another fd number
        this.targets.keys.add(key);
        push(this.orphans, key, { epoll: pf, tfd: t.tfd });
      }
    }
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
