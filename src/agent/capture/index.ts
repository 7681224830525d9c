/**
 * Capture: record the file tables of a set of processes, as the seed's
 * checkpoint_files does, from user space. See ARCHITECTURE.md "Capture".
 *
 * Per process: pidfd_open, then one native call (linux/fdtable.ts) that lists
 * /proc/PID/fd and reads per fd its link, its fdinfo, and through a pidfd_getfd
 * copy of the same open file fstat, F_GETFL and F_GETOWN_EX; the type's own
 * state is read through the copy after. Shared open files (kcmp KCMP_FILE) and shared file tables
 * (KCMP_FILES) are stored once.
 */
import { readFileSync } from 'node:fs';
import { hostname, release } from 'node:os';
import type { Checkpoint, FdRecord, FileRecord, FileTableRecord, ProcessRecord } from '../model.js';
import { O } from '../model.js';
import { bytesReadable, closeFd, pidfdOpen } from '../linux/process.js';
import type { TableEntry } from '../linux/fdtable.js';
import { SyscallError } from '../linux/errors.js';
import { KCMP_FILE, KCMP_FILES } from '../linux/kcmp.js';
import { isGone } from '../linux/errors.js';
import { AF_UNIX } from '../linux/socket.js';
import { fillUnixPeers } from './unix-peers.js';
import { ProcFdReader } from '../linux/procfd.js';
import { detectType, opsOf } from '../filetypes/index.js';
import { fdinfoFrom, parseFdinfo, type Fdinfo } from '../procfs/fdinfo.js';
import { fuseMountIds, MountTable, type MountFacts } from './mounts.js';
import { KcmpIndex } from './dedup.js';
import { readProcFacts } from './procinfo.js';
import { CaptureError } from './errors.js';
import { applyIgnores, findProblems } from './problems.js';
import { resolveReferences } from './resolve.js';
import type { CaptureOptions, CaptureResult } from './types.js';
import { TaskFreeze } from './taskfreeze.js';

export type {
  CaptureOptions,
  CaptureResult,
  CaptureStats,
  CaptureTimings,
  FdProblem,
  ProblemKind,
} from './types.js';
export { CaptureError } from './errors.js';

function raise(err: Error | undefined): never {
  throw err ?? new Error('no error to raise');
}

/** PIDFD_THREAD (= O_EXCL): a pidfd for a thread that is not a group leader (Linux 6.9+). */
const PIDFD_THREAD = 0o200;

/** Mutable state of one capture run. */
class CaptureRun {
  constructor(private readonly keepCopy?: CaptureOptions['keepCopy']) {}

  private nextObjref = 1;
  readonly files: FileRecord[] = [];
  readonly tables: FileTableRecord[] = [];
  readonly processes: ProcessRecord[] = [];
  /** File-level facts found while reading, turned into per-fd problems at the end. */
  /** Connected unix sockets with bytes queued: objref → bytes. */
  readonly queued = new Map<number, number>();
  readonly lockedBy = new Map<number, string>();
  readonly unlinked = new Set<number>();
  /** Files on FUSE mounts, never touched: objref → what the mount is. */
  readonly onFuse = new Map<number, string>();
  private readonly mounts = new MountTable();
  readonly fileIndex = new KcmpIndex(KCMP_FILE);
  readonly tableIndex = new KcmpIndex(KCMP_FILES);

  newObjref = (): number => this.nextObjref++;

  captureProcess(pid: number): void {
    const facts = this.guard(pid, undefined, () => readProcFacts(pid));
    // Tasks created with CLONE_FILES share one table: store it once.
    const table = this.tableIndex.findOrAdd('files', pid, 0, this.newObjref);
    this.processes.push({
      pid,
      tgid: facts.tgid,
      comm: facts.comm,
      argv: facts.argv,
      cwd: facts.cwd,
      ...(facts.exe === undefined ? {} : { exe: facts.exe }),
      table: table.objref,
    });
    if (table.found) return;
    const pidfd = this.guard(pid, undefined, () => pidfdOpen(pid, facts.tgid === pid ? 0 : PIDFD_THREAD));
    let proc: ProcFdReader | undefined;
    try {
      proc = this.guard(pid, undefined, () => new ProcFdReader(pid));
      const reader = proc;
      const mounts = this.guard(pid, undefined, () => this.mounts.of(pid));
      const fds: FdRecord[] = [];
      // Native calls read the table; files on FUSE mounts get no copy (see fuseFd).
      try {
        reader.table(pidfd, fuseMountIds(mounts), this.keepCopy !== undefined, (e) =>
          fds.push(this.captureFd(reader, mounts, e)),
        );
      } catch (err) {
        // The listing itself failing means the process is gone; captureFd names its own failures.
        if (err instanceof SyscallError && err.syscall === 'getdents64')
          this.guard(pid, undefined, () => raise(err));
        throw err;
      }
      this.tables.push({ objref: table.objref, fds });
    } finally {
      proc?.close();
      closeFd(pidfd);
    }
  }

  private captureFd(proc: ProcFdReader, mounts: ReadonlyMap<number, MountFacts>, e: TableEntry): FdRecord {
    const { pid } = proc;
    const { fd, link } = e;
    let kept = false;
    try {
      if (e.error) this.guard(pid, fd, () => raise(e.error));
      // A long fdinfo (an epoll's targets, an inotify's watches) is read on its own.
      const fdinfo =
        e.common && e.fdinfo !== undefined
          ? fdinfoFrom(e.common, e.fdinfo)
          : parseFdinfo(e.fdinfo ?? this.guard(pid, fd, () => proc.fdinfo(fd)), `pid ${pid} fd ${fd}`);
      const cloexec = (fdinfo.flags & O.CLOEXEC) !== 0;
      if (e.skipped) return this.fuseFd(pid, fd, link, fdinfo, mounts.get(fdinfo.mntId)!, cloexec);
      const stat = e.stat!;
      const shared = this.fileIndex.findOrAdd(`${stat.dev}:${stat.ino}`, pid, fd, this.newObjref);
      if (shared.found) return { fd, file: shared.objref, cloexec };
      const ops = detectType(link, stat, fdinfo);
      if (e.copy < 0 && !ops.readsNoCopy)
        throw new Error(
          `pid ${pid} fd ${fd}: a ${ops.type} needs its copy (native/fdckpt-table.c closed it)`,
        );
      const copy = e.copy;
      const data = ops.checkpoint({ pid, fd, copy, link, fdinfo, stat });
      const file: FileRecord = {
        objref: shared.objref,
        type: ops.type,
        flags: fdinfo.flags & ~O.CLOEXEC,
        pos: fdinfo.pos,
        path: link,
        mntId: fdinfo.mntId,
        dev: stat.dev,
        ino: stat.ino,
        mode: stat.mode,
        data,
      };
      this.files.push(file);
      // O_PATH files cannot have an owner: the native read does not ask (owner null).
      if (e.ownerError) this.guard(pid, fd, () => raise(e.ownerError));
      if (e.owner) file.owner = { ...e.owner, signal: e.signal };
      // Bytes queued in a connected unix socket are not copied (a socketpair restores empty).
      if (file.data.type === 'socket' && file.data.family === AF_UNIX && file.data.state === 'connected') {
        const queued = bytesReadable(copy);
        if (queued > 0) this.queued.set(file.objref, queued);
      }
      if (fdinfo.locks.length > 0) this.lockedBy.set(file.objref, fdinfo.locks[0]!);
      // A file reopened by its path cannot be, once its last name is gone.
      if (stat.nlink === 0 && opsOf(file.type).byPath) this.unlinked.add(file.objref);
      kept = copy >= 0 && (this.keepCopy?.(file.objref, copy) ?? false);
      return { fd, file: file.objref, cloexec };
    } finally {
      if (!kept && e.copy >= 0) closeFd(e.copy);
      e.copy = -1;
    }
  }

  /**
   * A file on a FUSE mount, recorded from /proc alone: no pidfd_getfd (its
   * close would send FUSE_FLUSH), no fstat (FUSE_GETATTR). Its type and mode
   * are unknown, so it is always a problem (findProblems), ignored or not.
   */
  private fuseFd(
    pid: number,
    fd: number,
    link: string,
    fdinfo: Fdinfo,
    mount: MountFacts,
    cloexec: boolean,
  ): FdRecord {
    // Without an inode number (kernel < 5.14) every fd is its own file: kcmp still dedups it below.
    const ino = fdinfo.ino >= 0 ? fdinfo.ino : -fd - 1;
    const shared = this.fileIndex.findOrAdd(`${mount.dev}:${ino}`, pid, fd, this.newObjref);
    if (shared.found) return { fd, file: shared.objref, cloexec };
    this.files.push({
      objref: shared.objref,
      type: 'regular',
      flags: fdinfo.flags & ~O.CLOEXEC,
      pos: fdinfo.pos,
      path: link,
      mntId: fdinfo.mntId,
      dev: mount.dev,
      ino,
      mode: 0,
      data: { type: 'regular', size: 0 },
    });
    this.onFuse.set(shared.objref, `${mount.fstype}, mnt_id ${fdinfo.mntId}`);
    return { fd, file: shared.objref, cloexec };
  }

  /** Runs a /proc or syscall read; turns "it is gone" into a CaptureError that says what vanished. */
  private guard<T>(pid: number, fd: number | undefined, read: () => T): T {
    try {
      return read();
    } catch (err) {
      if (!isGone(err) && (err as { code?: string }).code !== 'EBADF') throw err;
      const alive = processAlive(pid);
      const what = !alive
        ? `pid ${pid} exited during capture`
        : `pid ${pid} fd ${fd} was closed during capture`;
      throw new CaptureError(`${what} (${(err as Error).message})`, { cause: err });
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Captures the file tables of `pids` (processes or threads). Everything seen is
 * recorded; fds that make the checkpoint unrestorable and are not ignored are
 * listed in `problems`. Throws CaptureError when a process exits or an fd is
 * closed while it is being read. With `stopTasks`, every thread of the
 * processes is stopped first and resumed before it returns or throws.
 */
export function capture(pids: readonly number[], options: CaptureOptions = {}): CaptureResult {
  if (!options.stopTasks) return captureRunning(pids, options);
  const freeze = TaskFreeze.stop(pids);
  let result: CaptureResult;
  try {
    result = captureRunning(pids, options);
  } catch (err) {
    try {
      freeze.thaw();
    } catch {
      // The capture's error says more; thaw() resumed every task it could.
    }
    throw err;
  }
  result.timings.frozenMs = freeze.thaw();
  return result;
}

function captureRunning(pids: readonly number[], options: CaptureOptions): CaptureResult {
  const run = new CaptureRun(options.keepCopy);
  for (const pid of pids) run.captureProcess(pid);
  const checkpoint: Checkpoint = {
    header: {
      node: hostname(),
      source: options.source ?? `pids ${pids.join(',')}`,
      time: Date.now(),
      kernel: release(),
      tool: 'fdckpt 0.1.0',
    },
    processes: run.processes,
    tables: run.tables,
    files: run.files,
  };
  resolveReferences(checkpoint);
  // A unix socket's peer (sock_diag) tells whether a socketpair has both ends captured.
  fillUnixPeers(checkpoint, pids);
  applyIgnores(checkpoint, options);
  const problems = findProblems(checkpoint, {
    queued: run.queued,
    locked: run.lockedBy,
    unlinked: run.unlinked,
    fuse: run.onFuse,
  });
  const stats = {
    fds: run.tables.reduce((n, t) => n + t.fds.length, 0),
    files: run.files.length,
    kcmpCalls: run.fileIndex.comparisons,
  };
  return { checkpoint, problems, stats, timings: { frozenMs: 0 } };
}
