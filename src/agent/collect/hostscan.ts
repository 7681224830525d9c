/**
 * Scans every other process of the host for fds that may refer to the pod's
 * objects. It must be fast (100k fds well under a second), so the hot loop is
 * every link of a process in one native call (FdDir.links), a stat only for fds that have a path
 * (their key is device:inode), and fdinfo only for pty masters. The expensive
 * confirmations (kcmp) are left to the caller, for the few candidates found.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { FdDir, type TargetStat } from '../linux/hostfd.js';
import { KCMP_FILES, kcmp } from '../linux/kcmp.js';
import { bracketIno, inodeKey, ptyKey, ptySlaveIndex } from '../procfs/keys.js';

const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;

/** What to look for: keys of the pod's objects (see keys.ts). */
export interface ScanTargets {
  /** `pipe:[N]`, `socket:[N]`, `inode:D:I`, `pty:D:N` keys. */
  keys: ReadonlySet<string>;
  /** Exact anon-inode links held by the pod (`anon_inode:[eventfd]`): candidates for kcmp. */
  anonLinks: ReadonlySet<string>;
}

/** One fd outside the pod that matches a target key. */
export interface HostFdHit {
  pid: number;
  fd: number;
  link: string;
  key: string;
}

/** The result of one scan. */
export interface HostScan {
  hits: HostFdHit[];
  /** Processes whose fd links could not be read at all (not scanned: a leak there would be missed). */
  unreadable: number[];
  /** Number of processes and fds read, for reports and benchmarks. */
  processes: number;
  fds: number;
  ms: number;
  /** Threads that took part (workers still starting up when the work ran out do not). */
  threads: number;
}

/** The devpts instance a process sees at /dev/pts (for masters opened through /dev/ptmx). */
function devptsOf(pid: number, cache: Map<string, number>): number {
  let ns: string;
  try {
    ns = readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return -1;
  }
  let dev = cache.get(ns);
  if (dev === undefined) {
    dev = statSync(`/proc/${pid}/root/dev/pts`, { throwIfNoEntry: false })?.dev ?? -1;
    cache.set(ns, dev);
  }
  return dev;
}

/** The key of a pty end from outside: a slave by its rdev, a master by fdinfo tty-index. */
function ptyKeyOf(
  pid: number,
  fd: number,
  link: string,
  st: TargetStat,
  devpts: Map<string, number>,
): string | undefined {
  const slave = ptySlaveIndex(st.rdev);
  if (slave >= 0) return ptyKey(st.dev, slave);
  if (!link.endsWith('ptmx')) return undefined;
  let info: string;
  try {
    info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1');
  } catch {
    return undefined;
  }
  const m = /^tty-index:\s+(\d+)$/m.exec(info);
  if (!m) return undefined;
  // Opened as /dev/pts/ptmx the file lives on devpts itself; as /dev/ptmx it is the
  // devtmpfs node the kernel redirects to the instance mounted at /dev/pts.
  const dev = link.endsWith('/pts/ptmx') ? st.dev : devptsOf(pid, devpts);
  return ptyKey(dev, Number(m[1]));
}

/** Threads of `pid` (not excluded) whose fd table is not the process's own. */
function ownTableThreads(pid: number, exclude: ReadonlySet<number>): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  if (tasks.length < 2) return out;
  for (const t of tasks) {
    const tid = Number(t);
    if (tid === pid || exclude.has(tid)) continue;
    try {
      if (kcmp(pid, tid, KCMP_FILES, 0, 0) !== 0) out.push(tid);
    } catch {
      // exited, or not comparable: nothing we could read either
    }
  }
  return out;
}

/** The mount namespace id of a process (`mnt:[4026531841]`), or '' when it cannot be read. */
function mountNamespace(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return '';
  }
}

/** The part of a scan one thread did. */
export interface ScanPart {
  hits: HostFdHit[];
  unreadable: number[];
  processes: number;
  fds: number;
}

/**
 * Scans the fd tables of the processes `pids[next()]` until `next()` returns
 * -1 (threads share the list through an atomic counter), and their threads
 * that have a table of their own.
 */
export function scanPids(
  targets: ScanTargets,
  pids: readonly number[],
  exclude: ReadonlySet<number>,
  next: () => number,
): ScanPart {
  const hits: HostFdHit[] = [];
  const devpts = new Map<string, number>();
  const wantPaths = [...targets.keys].some((k) => k.startsWith('inode:') || k.startsWith('pty:'));
  let processes = 0;
  let nfds = 0;
  const unreadable: number[] = [];
  const pathKeys = new Map<string, string>();
  // The mount namespace of the table being scanned, read at its first path link.
  let mntns: string | undefined;
  let unread = 0;
  const scanFd = (dir: FdDir, pid: number, fd: number, link: string | undefined): void => {
    if (link === undefined) {
      unread++;
      return;
    }
    let key: string | undefined;
    if (link.charCodeAt(0) === 47 /* '/' */) {
      if (!wantPaths) return;
      // One link names one dentry within a mount namespace, so its inode can be
      // reused for the next fd with the same link there (hosts open the same
      // few files thousands of times). Not for deleted files (a name may have
      // been reused) nor devices (a pty master's index is per open file).
      mntns ??= mountNamespace(pid);
      const cacheKey = `${mntns}\0${link}`;
      const cached = link.endsWith(' (deleted)') ? undefined : pathKeys.get(cacheKey);
      if (cached !== undefined) {
        key = cached;
      } else {
        const st = dir.stat(fd);
        if (st === undefined) return;
        key = inodeKey(st.dev, st.ino);
        if ((st.mode & S_IFMT) === S_IFCHR) {
          if (!targets.keys.has(key)) key = ptyKeyOf(pid, fd, link, st, devpts);
        } else if (mntns !== '') {
          pathKeys.set(cacheKey, key);
        }
      }
    } else if (link.startsWith('anon_inode:')) {
      if (targets.anonLinks.has(link)) hits.push({ pid, fd, link, key: link });
      return;
    } else if (bracketIno(link) >= 0) {
      key = link;
    }
    if (key !== undefined && targets.keys.has(key)) hits.push({ pid, fd, link, key });
  };
  /** Scans one fd table, of a process or of a thread that has its own. */
  const scanTable = (pid: number): void => {
    const dir = FdDir.open(pid);
    if (dir === undefined) return; // gone, or not ours to inspect
    try {
      mntns = undefined;
      unread = 0;
      const n = dir.links((fd, link) => scanFd(dir, pid, fd, link));
      if (n === undefined || n === 0) return; // gone meanwhile, or a zombie (no table)
      processes++;
      nfds += n;
      // Every link refused (EACCES: a process we may not inspect): its fds are unknown, say so.
      if (unread === n) unreadable.push(pid);
    } finally {
      dir.close();
    }
  };
  for (let i = next(); i >= 0; i = next()) {
    const pid = pids[i]!;
    scanTable(pid);
    // A thread that called unshare(CLONE_FILES) has a table of its own, which
    // /proc/PID/fd does not show: scan it too.
    for (const tid of ownTableThreads(pid, exclude)) scanTable(tid);
  }
  return { hits, unreadable, processes, fds: nfds };
}

/** The processes of the host, as /proc lists them, minus `exclude`. */
export function hostPids(exclude: ReadonlySet<number>): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(name);
    if (!exclude.has(pid)) pids.push(pid);
  }
  return pids;
}

/**
 * Reads the fd tables of every process except `exclude` (the pod's and our own)
 * and returns the fds whose key is a target. Processes and fds that vanish
 * while we read are skipped: they hold nothing any more. Single-threaded; see
 * scanpool.ts for the parallel version.
 */
export function scanHost(targets: ScanTargets, exclude: ReadonlySet<number>): HostScan {
  const start = performance.now();
  const pids = hostPids(exclude);
  let i = 0;
  const part = scanPids(targets, pids, exclude, () => (i < pids.length ? i++ : -1));
  return { ...part, ms: performance.now() - start, threads: 1 };
}
