/**
 * From a saved file table and a policy to restore units: one per open file to
 * recreate (a pipe's two ends form one unit), each with the fds it goes to.
 * Everything that can be checked before touching the target is checked here.
 */
import { CREATION_ONLY_FLAGS, O, type Checkpoint, type FileRecord, type FileTableRecord } from '../model.js';
import { hostView, prefetched, type PathView } from '../linux/pathstat.js';
import { S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG } from '../linux/stat.js';
import { unnormalized } from '../image/paths.js';
import { fdLimit } from '../linux/limits.js';
import { opsOf } from '../filetypes/index.js';
import { canRestore } from './planners.js';
import type { ReopenByPath } from '../filetypes/types.js';
import type { FileUnit, PipeUnit, RestoreUnit } from '../replay-steps/types.js';
import { ReplayError, ReplayRefusals } from '../replay-steps/errors.js';
import { decide, type FdDecision, type RestorePolicy } from './policy.js';

/** The lowest target fd of a unit: restore goes in this order (then retries). */
export function firstFd(u: RestoreUnit): number {
  if (u.kind === 'file') return u.unit.targets[0]!.fd;
  return Math.min(u.read?.targets[0]?.fd ?? Infinity, u.write?.targets[0]?.fd ?? Infinity);
}

function checkFlags(fd: number, file: FileRecord): void {
  if ((file.flags & O.ACCMODE) === 3)
    throw new ReplayError(fd, file.path, `bad access mode in flags 0o${file.flags.toString(8)}`);
  if (file.flags & CREATION_ONLY_FLAGS) {
    throw new ReplayError(
      fd,
      file.path,
      `saved flags 0o${file.flags.toString(8)} carry O_CREAT/O_EXCL/O_NOCTTY/O_TRUNC`,
    );
  }
}

/**
 * Checks a by-path file against what is on disk now, as the target will see it (`view`).
 * The saved path is what /proc/PID/fd/N read at capture: absolute, normalized,
 * symlinks resolved, of the file with the saved device and inode. A path that
 * is not such a path, is now a symlink, or names another file is refused: the
 * restore may run as root and would open whatever is there.
 */
function checkPathFile(
  fd: number,
  unit: FileUnit,
  decision: FdDecision,
  view: PathView,
  byPath: ReopenByPath,
): void {
  const { file, path } = unit;
  if (!path.startsWith('/')) throw new ReplayError(fd, path, 'not an absolute path');
  const messy = unnormalized(path);
  if (messy) throw new ReplayError(fd, path, `not a normalized path (it has ${messy})`);
  const remapped = path !== file.path;
  if (!remapped) {
    const link = view.lstat(path);
    if (!('error' in link) && (link.mode & S_IFMT) === S_IFLNK)
      throw new ReplayError(fd, path, 'is now a symlink; at capture it was the file itself');
  }
  const st = view.stat(path);
  if ('error' in st) throw new ReplayError(fd, path, st.error);
  const kind = st.mode & S_IFMT;
  // A device node's identity is its rdev, which the image does not keep (/dev/null in a new
  // container is another inode, the same device); an image without dev/ino (0:0) has none to compare.
  const compared = kind === S_IFREG || kind === S_IFDIR || kind === S_IFIFO;
  if (!remapped && compared && (file.dev !== 0 || file.ino !== 0) && !decision.allowFileChange) {
    if (st.dev !== file.dev || st.ino !== file.ino) {
      throw new ReplayError(
        fd,
        path,
        `another file than at capture (dev:ino ${file.dev}:${file.ino} → ${st.dev}:${st.ino}; policy allowFileChange accepts it)`,
      );
    }
  }
  // A type may cover several st_mode types ('regular' covers devices): the saved one says which it was.
  const wasKind = file.mode & S_IFMT;
  if (wasKind !== 0 && kind !== wasKind) {
    throw new ReplayError(
      fd,
      path,
      `file type changed (st_mode 0o${wasKind.toString(8)} → 0o${kind.toString(8)})`,
    );
  }
  if (!byPath.accepts(kind, file)) throw new ReplayError(fd, path, `no longer ${byPath.noun}`);
  if (kind === S_IFREG && st.size < file.pos && !decision.allowSizeChange) {
    throw new ReplayError(
      fd,
      path,
      `file is ${st.size} bytes, shorter than the saved offset ${file.pos} (policy allowSizeChange accepts it)`,
    );
  }
  unit.checked = { dev: st.dev, ino: st.ino, kind };
}

function checkRestorable(fd: number, file: FileRecord): void {
  if (!canRestore(file.type)) {
    throw new ReplayError(
      fd,
      file.path,
      `type ${file.type} has no restore (policy skip or devnull can replace it)`,
    );
  }
  if (file.data.type !== file.type)
    throw new ReplayError(fd, file.path, `data is for type ${file.data.type}`);
  const why = (opsOf(file.type) as { unrestorable?: (f: FileRecord) => string | undefined }).unrestorable?.(
    file,
  );
  if (why !== undefined)
    throw new ReplayError(fd, file.path, `${why} (policy skip or devnull can replace it)`);
}

function restoreAsIs(file: FileRecord, policy: RestorePolicy): FdDecision {
  const allowFileChange = policy.newContainer ?? false;
  return { action: 'fail', allowSizeChange: false, allowFileChange, path: file.path };
}

/** The table of process `pid` in `cp` (default: the first process). */
export function tableOf(cp: Checkpoint, pid?: number): FileTableRecord {
  const proc = pid === undefined ? cp.processes[0] : cp.processes.find((p) => p.pid === pid);
  if (!proc)
    throw new Error(pid === undefined ? 'the image holds no process' : `the image holds no process ${pid}`);
  const table = cp.tables.find((t) => t.objref === proc.table);
  if (!table) throw new Error(`process ${proc.pid}: file table objref ${proc.table} is not in the image`);
  return table;
}

/** The units to recreate, and the fds the new process keeps as it was started with them. */
export interface Units {
  units: RestoreUnit[];
  /** fds under policy `inherit`, ascending: left open by close_range, nothing replayed there. */
  inherit: number[];
}

/**
 * Groups the table's fds into restore units, applying the policy and checking
 * every file — in `view`: the target's root for a restore into another
 * process's mount namespace (linux/pathstat.ts rootView), else our own.
 * Throws a ReplayError for the first fd that cannot be restored.
 */
export function buildUnits(
  cp: Checkpoint,
  table: FileTableRecord,
  policy: RestorePolicy,
  view: PathView = hostView,
  startedWith: ReadonlySet<number> = new Set(),
): Units {
  const inherit: number[] = [];
  const files = new Map(cp.files.map((f) => [f.objref, f]));
  const byKey = new Map<number | string, FileUnit>();
  const seenFds = new Set<number>();
  /** memfd inode (dev:ino) → the open file restored for it: a memfd is recreated once per open file. */
  const memfds = new Map<string, number>();
  const limit = fdLimit();
  // Every by-path file of the table validated in one native call (saved paths that could
  // pass checkPathFile); a path a policy remaps is stat'ed on its own.
  const fileView = prefetched(
    view,
    table.fds.flatMap((e) => {
      const f = files.get(e.file);
      return f && !f.ignored && opsOf(f.type).byPath && f.path.startsWith('/') && !unnormalized(f.path)
        ? [f.path]
        : [];
    }),
  );
  /** One fd of the table into its unit; throws a ReplayError naming it when it cannot be restored. */
  function addFd(rec: FileTableRecord['fds'][number]): void {
    const file = files.get(rec.file);
    if (!file) throw new ReplayError(rec.fd, `objref ${rec.file}`, 'file is not in the image');
    if (!Number.isInteger(rec.fd) || rec.fd < 0) throw new ReplayError(rec.fd, file.path, 'bad fd number');
    if (seenFds.has(rec.fd)) throw new ReplayError(rec.fd, file.path, 'fd listed twice');
    seenFds.add(rec.fd);
    if (file.ignored) return;
    if (rec.fd >= limit)
      throw new ReplayError(rec.fd, file.path, `at or above the target's RLIMIT_NOFILE (${limit})`);
    const decision =
      policy.rules.length === 0 ? restoreAsIs(file, policy) : decide(policy, rec.fd, file, rec.cloexec);
    if (decision.action === 'skip') return;
    if (decision.action === 'inherit') {
      inherit.push(rec.fd);
      return;
    }
    checkFlags(rec.fd, file);
    const devnull = decision.action === 'devnull';
    // Most fds: the file as saved, keyed by objref alone; remapped/devnull ones apart.
    const key = devnull
      ? -file.objref
      : decision.path === file.path
        ? file.objref
        : `${file.objref}:${decision.path}`;
    let unit = byKey.get(key);
    if (!unit) {
      if (!devnull) checkRestorable(rec.fd, file);
      if (!devnull && file.type === 'memfd') {
        const inode = `${file.dev}:${file.ino}`;
        if ((memfds.get(inode) ?? file.objref) !== file.objref) {
          throw new ReplayError(
            rec.fd,
            file.path,
            'a second open file on one memfd (reopened through /proc) is not supported',
          );
        }
        memfds.set(inode, file.objref);
      }
      unit = { file, targets: [], path: devnull ? '/dev/null' : decision.path, devnull };
      const ops = opsOf(file.type) as {
        byPath?: ReopenByPath;
        check?: (u: FileUnit, fd: number, v: PathView) => void;
      };
      if (!devnull && ops.byPath) checkPathFile(rec.fd, unit, decision, fileView, ops.byPath);
      if (!devnull) ops.check?.(unit, rec.fd, fileView);
      byKey.set(key, unit);
    }
    unit.targets.push({ fd: rec.fd, cloexec: rec.cloexec });
  }
  const refused: ReplayError[] = [];
  for (const rec of table.fds) {
    try {
      addFd(rec);
    } catch (err) {
      if (!(err instanceof ReplayError)) throw err;
      refused.push(err);
    }
  }
  // Every refused fd at once; a unit left half-built by a refusal is never planned.
  if (refused.length > 0) throw new ReplayRefusals(refused);
  const units: RestoreUnit[] = [];
  const pipes = new Map<number, PipeUnit>();
  for (const unit of byKey.values()) {
    const data = unit.file.data;
    if (unit.devnull || data.type !== 'pipe') {
      units.push({ kind: 'file', unit });
      continue;
    }
    let pipe = pipes.get(data.pipeIno);
    if (!pipe) {
      pipe = { kind: 'pipe', pipeIno: data.pipeIno };
      pipes.set(data.pipeIno, pipe);
      units.push(pipe);
    }
    if (pipe[data.end]) {
      const fd = unit.targets[0]!.fd;
      throw new ReplayError(
        fd,
        unit.file.path,
        `a second ${data.end} end of one pipe (two open files) is not supported`,
      );
    }
    pipe[data.end] = unit;
  }
  // An fd the new process was started with that the saved table lacks (a daemon that
  // closed its stdio) is still its own under an `inherit` rule for that number: kept,
  // not closed with everything else, so the program keeps its container's fds 0–2.
  for (const fd of startedWith) if (!seenFds.has(fd) && inheritsByNumber(policy, fd)) inherit.push(fd);
  // Targets were pushed in fd order, so each unit's first target is its lowest fd.
  const order = new Map(units.map((u) => [u, firstFd(u)]));
  return {
    units: units.sort((a, b) => order.get(a)! - order.get(b)!),
    inherit: inherit.sort((a, b) => a - b),
  };
}

/** Whether `policy` keeps fd number `fd` as the new process has it whatever the file (`{fd, action: inherit}`). */
function inheritsByNumber(policy: RestorePolicy, fd: number): boolean {
  const rule = policy.rules.find((r) => r.fd === fd);
  return (
    rule?.action === 'inherit' &&
    rule.path === undefined &&
    rule.type === undefined &&
    rule.cloexec === undefined &&
    rule.listening === undefined
  );
}
