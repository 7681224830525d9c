/**
 * Which fds make a checkpoint unrestorable, and the caller's ignores (the
 * seed's IGNORE: recorded in the image, never restored).
 */
import type { Checkpoint, FileRecord, FileType } from '../model.js';
import { isRestorable, opsOf } from '../filetypes/index.js';
import type { CaptureOptions, FdProblem, ProblemKind } from './types.js';

/** Thrown for an ignore that cannot be honoured (unknown fd, half of a shared file). */
export class IgnoreError extends Error {
  override readonly name = 'IgnoreError';
}

/** Whether `path` is one of `paths`, or below one that ends in '/'. */
function pathIgnored(path: string, paths: readonly string[]): boolean {
  return paths.some((x) => path === x || (x.endsWith('/') && path.startsWith(x)));
}

/**
 * Marks files ignored by type, by path (recorded as 'fd': every fd of the file is
 * ignored, the image format has no third reason), or by fd when every fd sharing the
 * file is ignored.
 */
export function applyIgnores(cp: Checkpoint, options: CaptureOptions): void {
  const ignoreTypes = new Set(options.ignoreTypes ?? []);
  const paths = options.ignorePaths ?? [];
  for (const file of cp.files) {
    if (ignoreTypes.has(file.type)) file.ignored = { reason: 'type' };
    else if (paths.length > 0 && pathIgnored(file.path, paths)) file.ignored = { reason: 'fd' };
  }
  if (!options.ignoreFds?.length) return;

  const tableOf = new Map(cp.processes.map((p) => [p.pid, p.table]));
  const ignoredFds = new Set<string>();
  for (const { pid, fd } of options.ignoreFds) {
    const table = tableOf.get(pid);
    if (table === undefined) throw new IgnoreError(`--ignore-fd ${pid}:${fd}: pid ${pid} was not captured`);
    if (!cp.tables.find((t) => t.objref === table)?.fds.some((e) => e.fd === fd)) {
      throw new IgnoreError(`--ignore-fd ${pid}:${fd}: pid ${pid} has no fd ${fd}`);
    }
    ignoredFds.add(`${table}:${fd}`);
  }
  // An open file is ignored only if no fd that will be restored refers to it.
  const holders = new Map<number, { ignored: string[]; kept: string[] }>();
  for (const t of cp.tables) {
    for (const e of t.fds) {
      const h = holders.get(e.file) ?? { ignored: [], kept: [] };
      (ignoredFds.has(`${t.objref}:${e.fd}`) ? h.ignored : h.kept).push(describeFd(cp, t.objref, e.fd));
      holders.set(e.file, h);
    }
  }
  for (const file of cp.files) {
    const h = holders.get(file.objref);
    if (!h || h.ignored.length === 0 || file.ignored) continue;
    if (h.kept.length > 0) {
      throw new IgnoreError(
        `${h.ignored[0]} shares its open file (${file.path}) with ${h.kept.join(', ')}, which ` +
          `${h.kept.length > 1 ? 'are' : 'is'} not ignored: ignore all of them or none`,
      );
    }
    file.ignored = { reason: 'fd' };
  }
}

function describeFd(cp: Checkpoint, table: number, fd: number): string {
  const pid = cp.processes.find((p) => p.table === table)?.pid;
  return `pid ${pid} fd ${fd}`;
}

export interface FileFacts {
  /** Connected unix sockets with bytes queued (objref → bytes): not copied, so refused. */
  queued: ReadonlyMap<number, number>;
  locked: ReadonlyMap<number, string>;
  unlinked: ReadonlySet<number>;
  /** Files on FUSE mounts, never opened nor stat'ed: objref → the mount (capture/mounts.ts). */
  fuse?: ReadonlyMap<number, string>;
}

function fuseWhy(mount: string): string {
  return (
    `on a FUSE file system (${mount}): its server may be a process of the frozen pod, so fdckpt ` +
    'neither stats nor copies the file (it would wait on the server forever) and cannot checkpoint it'
  );
}

/** What the captured set holds, for owners and socket peers that must be part of it. */
interface Captured {
  pids: ReadonlySet<number>;
  socketInodes: ReadonlySet<number>;
}

/**
 * An owner is restored by mapping a captured pid (or tid) to the restored process
 * (replay does it); one outside the captured processes, or a process group, is not.
 */
function ownerProblem(file: FileRecord, captured: Captured): string | undefined {
  const o = file.owner;
  if (o === undefined) return undefined;
  if (o.kind === 'pgrp') return `has a process group (${o.id}) as owner for SIGIO/SIGURG (set by F_SETOWN)`;
  if (!captured.pids.has(o.id))
    return `has an owner for SIGIO/SIGURG (${o.kind} ${o.id}, set by F_SETOWN) that is not captured`;
  return undefined;
}

/** A unix socketpair end is restored with its peer (socketpair(2)): both must be captured, empty. */
function peerProblem(file: FileRecord, facts: FileFacts, captured: Captured): string | undefined {
  const d = file.data;
  if (d.type !== 'socket' || d.peerIno === undefined || d.state !== 'connected') return undefined;
  if (!captured.socketInodes.has(d.peerIno))
    return `a connected unix socket whose peer socket:[${d.peerIno}] is not in the captured processes`;
  const queued = facts.queued.get(file.objref);
  if (queued !== undefined) return `a connected unix socket with ${queued} bytes queued (not copied)`;
  return undefined;
}

function problemOf(
  file: FileRecord,
  facts: FileFacts,
  captured: Captured,
): { kind: ProblemKind; why: string; ignoreType?: FileType } | undefined {
  if (facts.unlinked.has(file.objref))
    return { kind: 'unlinked', why: 'the file was unlinked and cannot be reopened by name' };
  if (facts.locked.has(file.objref))
    return { kind: 'locked', why: `holds a lock or lease (${facts.locked.get(file.objref)})` };
  const owned = ownerProblem(file, captured);
  if (owned !== undefined) return { kind: 'owned', why: owned };
  const peer = peerProblem(file, facts, captured);
  if (peer !== undefined) return { kind: 'unsupported', why: peer };
  const ops = opsOf(file.type);
  if (!isRestorable(file.type)) {
    return { kind: 'unsupported', why: `type ${file.type} cannot be restored yet`, ignoreType: file.type };
  }
  const why = ops.unrestorable?.(file);
  return why === undefined ? undefined : { kind: 'unsupported', why, ignoreType: file.type };
}

/** One problem per fd (not per file), so that every refused fd is named. */
export function findProblems(cp: Checkpoint, facts: FileFacts): FdProblem[] {
  const byObjref = new Map(cp.files.map((f) => [f.objref, f]));
  const captured: Captured = {
    pids: new Set(cp.processes.map((p) => p.pid)),
    socketInodes: new Set(cp.files.flatMap((f) => (f.data.type === 'socket' ? [f.data.sockIno] : []))),
  };
  const problems: FdProblem[] = [];
  for (const proc of cp.processes) {
    const table = cp.tables.find((t) => t.objref === proc.table);
    // A table shared with an earlier process was already reported through it.
    if (!table || cp.processes.find((p) => p.table === table.objref) !== proc) continue;
    for (const entry of table.fds) {
      const file = byObjref.get(entry.file);
      if (!file) continue;
      // Never restorable (nothing about it was read), so an ignore cannot make it an image.
      const fuse = facts.fuse?.get(file.objref);
      if (file.ignored && fuse === undefined) continue;
      const problem =
        fuse !== undefined
          ? { kind: 'unsupported' as const, why: fuseWhy(fuse) }
          : problemOf(file, facts, captured);
      if (problem) {
        problems.push({
          kind: problem.kind,
          pid: proc.pid,
          fd: entry.fd,
          file: file.objref,
          message: `pid ${proc.pid} fd ${entry.fd} (${file.path}): ${problem.why}`,
          ...(problem.ignoreType ? { ignoreType: problem.ignoreType } : {}),
        });
      }
    }
  }
  return problems;
}
