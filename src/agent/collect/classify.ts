/**
 * What one outside fd that matched a pod key means: a leak (and which kind),
 * an inode-level note, or nothing. See docs/leaks.md, "Confirmation".
 */
import { KCMP_FILES, isEpollTarget, kcmp } from '../linux/kcmp.js';
import type { Checkpoint } from '../model.js';
import { opsOf } from '../filetypes/index.js';
import type { Ends } from './ends.js';
import type { HostFdHit } from './hostscan.js';
import type { OrphanTarget, PodIndex } from './podindex.js';
import type { PodFile } from './podview.js';
import type { Leak, LeakVia, Note } from './report.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** Collects leaks and notes for the hits of one scan. */
export class Classifier {
  readonly leaks: Leak[] = [];
  readonly notes: Note[] = [];
  /** One shared-inode note per outside process and file, however many fds it has on it. */
  private readonly sharedSeen = new Set<string>();

  constructor(
    private readonly idx: PodIndex,
    private readonly files: ReadonlyMap<number, PodFile>,
    private readonly ends: Ends,
  ) {}

  classify(hit: HostFdHit): void {
    const self = this.idx.bySelf.get(hit.key);
    if (self) return this.sameObject(hit, self);
    const watched = this.idx.orphans.get(hit.key);
    if (watched) return this.epollOrphan(hit, watched);
    const referrer = this.idx.byRef.get(hit.key)?.[0];
    if (referrer) {
      const via: LeakVia = hit.key.startsWith('socket:') ? 'socket peer' : 'other end of pipe';
      return this.leak(referrer, via, hit);
    }
    const mapped = this.idx.podMaps.get(hit.key);
    if (mapped) {
      this.notes.push({
        kind: 'mapped-inside',
        object: { type: 'regular', id: mapped.path },
        inside: this.ends.inside({ pid: mapped.pid, fd: -1 }),
        outside: this.ends.outside(hit.pid, hit.fd),
        detail: `mapped by pid ${mapped.pid}, open outside as ${hit.link}`,
      });
    }
  }

  /** The hit's key is a pod file's own: the same open file, or the same object opened apart. */
  private sameObject(hit: HostFdHit, self: PodFile[]): void {
    const objref = this.idx.search.find(hit.key, hit.pid, hit.fd);
    const same = objref === undefined ? undefined : this.files.get(objref);
    if (same) return this.leak(same, 'same open file', hit);
    const first = self[0]!;
    const via = opsOf(first.file.type).sameObjectVia;
    if (via) return this.leak(first, via, hit);
    if ((first.file.mode & S_IFMT) !== S_IFREG) return;
    const seen = `${hit.pid}:${first.file.objref}`;
    if (this.sharedSeen.has(seen)) return;
    this.sharedSeen.add(seen);
    this.notes.push({
      kind: 'shared-inode',
      object: { type: first.file.type, id: first.file.path },
      inside: this.ends.inside(first.holders[0]!),
      outside: this.ends.outside(hit.pid, hit.fd),
      detail: `also open as ${hit.link}, a different open file`,
    });
  }

  /** The watched file itself (kcmp(KCMP_EPOLL_TFD) says so), or the other end of that pipe. */
  private epollOrphan(hit: HostFdHit, watched: OrphanTarget[]): void {
    const type = hit.key.startsWith('pipe:') ? 'pipe' : 'socket';
    for (const { epoll, tfd } of watched) {
      const e = this.idx.rep(epoll);
      let same = false;
      try {
        same = isEpollTarget(hit.pid, hit.fd, e.pid, e.fd, tfd);
      } catch {
        same = false; // gone meanwhile, or not this registration
      }
      if (!same && type === 'socket') continue;
      this.leaks.push({
        object: { type, id: hit.link },
        via: same ? 'epoll target' : 'other end of pipe',
        inside: this.ends.inside(epoll.holders[0]!),
        outside: this.ends.outside(hit.pid, hit.fd),
      });
      return;
    }
  }

  /** A leak of pod file `pf`; the object is named as the pod sees it (its /proc link). */
  private leak(pf: PodFile, via: LeakVia, hit: HostFdHit): void {
    this.leaks.push({
      object: { type: pf.file.type, id: pf.file.path },
      via,
      inside: this.ends.inside(pf.holders[0]!),
      outside: this.ends.outside(hit.pid, hit.fd),
    });
  }

  /**
   * A shared fd table shares every open file, so it shows up first as
   * same-open-file leaks: only the outside tasks holding those are compared
   * (kcmp(KCMP_FILES)) with the pod's tasks.
   */
  sharedTables(cp: Checkpoint): void {
    const owners = cp.processes.filter((p, i) => cp.processes.findIndex((q) => q.table === p.table) === i);
    const checked = new Set<number>();
    for (const l of [...this.leaks]) {
      const out = l.outside.pid;
      if (l.via !== 'same open file' || checked.has(out)) continue;
      checked.add(out);
      const owner = owners.find((p) => {
        try {
          return kcmp(p.pid, out, KCMP_FILES, 0, 0) === 0;
        } catch {
          return false;
        }
      });
      if (!owner) continue;
      this.leaks.push({
        object: { type: 'files', id: `files of pid ${owner.pid}` },
        via: 'shared file table',
        inside: this.ends.inside({ pid: owner.pid, fd: -1 }),
        outside: this.ends.outside(out),
      });
    }
  }
}
