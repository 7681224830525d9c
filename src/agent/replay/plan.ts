/**
 * The restore plan for one file table: every syscall the target runs, in
 * order. Units go in order of their lowest fd; a unit that answers 'not-yet'
 * (an epoll before its targets) is retried after the others, until a pass
 * makes no progress (CRIU's ordering), which is an error naming the unit.
 */
import type { Checkpoint } from '../model.js';
import {
  F_GETFD,
  F_SETOWN,
  F_SETSIG,
  PlanBuilder,
  type FdTarget,
  type Plan,
} from '../replay-steps/builder.js';
import { ReplayError } from '../replay-steps/errors.js';
import { planUnit } from './planners.js';
import type { FileUnit, PlanContext, RestoreUnit } from '../replay-steps/types.js';
import type { RestorePolicy } from './policy.js';

import { buildUnits, firstFd, tableOf, type Units } from './units.js';
import type { PathView } from '../linux/pathstat.js';

export type { Plan } from '../replay-steps/builder.js';

/** Largest fd number close_range accepts as "all". */
const ALL_FDS = 0xffffffff;

function unitObjrefs(u: RestoreUnit): number[] {
  if (u.kind === 'file') return u.unit.devnull ? [] : [u.unit.file.objref];
  return [u.read?.file.objref, u.write?.file.objref].filter((x): x is number => x !== undefined);
}

/** Records where a unit's files went (only epoll planners ask, so the fd lists are built on demand). */
function markPlaced(u: RestoreUnit, placed: Map<number, FdTarget[]>): void {
  if (u.kind === 'file') {
    // devnull'ed files are not the saved file: nothing may find them as a target.
    if (!u.unit.devnull) placed.set(u.unit.file.objref, u.unit.targets);
    return;
  }
  if (u.read) placed.set(u.read.file.objref, u.read.targets);
  if (u.write) placed.set(u.write.file.objref, u.write.targets);
}

/**
 * close_range over every fd except the inherited ones (the new process's own stdio,
 * say), each of which must be open: an fcntl(F_GETFD) step fails the restore, naming
 * the fd, when it is not (the plan's fd numbers would be wrong otherwise).
 */
function closeAllBut(builder: PlanBuilder, inherit: readonly number[]): void {
  let from = 0;
  for (const fd of inherit) {
    if (fd > from) builder.add('close_range', [from, fd - 1, 0], 0, { fd: -1, path: 'close_range' });
    builder.add('fcntl', [fd, F_GETFD, 0], 'ok', { fd, path: 'inherited fd (policy inherit)' });
    builder.sim.occupy(fd);
    from = fd + 1;
  }
  builder.add('close_range', [from, ALL_FDS, 0], 0, { fd: -1, path: 'close_range' });
}

function fileUnits(u: RestoreUnit): FileUnit[] {
  if (u.kind === 'file') return u.unit.devnull ? [] : [u.unit];
  return [u.read, u.write].filter((x): x is FileUnit => x !== undefined);
}

/**
 * The owner for SIGIO/SIGURG (F_SETOWN), as CRIU restores fown: a captured pid or tid
 * of the restored table becomes the restored process (its pid is written in at
 * injection); the signal is set again with F_SETSIG. Any other owner is refused.
 */
function planOwner(builder: PlanBuilder, unit: FileUnit, ownerPids: ReadonlySet<number>): void {
  const o = unit.file.owner;
  if (o === undefined) return;
  const t = unit.targets[0]!;
  const owner = { fd: t.fd, path: unit.path };
  if (o.kind === 'pgrp' || !ownerPids.has(o.id)) {
    throw new ReplayError(
      t.fd,
      unit.path,
      `its owner for SIGIO/SIGURG (${o.kind} ${o.id}) is not the restored process (policy skip can leave it closed)`,
    );
  }
  // The restored program has one thread at its exec: a tid owner is that thread, its pid.
  builder.add('fcntl', [t.fd, F_SETOWN, { targetPid: true }], 0, owner);
  if (o.signal !== 0) builder.add('fcntl', [t.fd, F_SETSIG, o.signal], 0, owner);
}

/** Orders units and asks each planner for its steps; `ownerPids`: the captured pids of this table. */
export function planUnits({ units, inherit }: Units, ownerPids: ReadonlySet<number> = new Set()): Plan {
  // Most fds cost one to three steps, and a file opened by path one fstat more; the data is mostly paths.
  let fds = 0;
  let files = 0;
  let bytes = 0;
  for (const u of units) {
    for (const f of u.kind === 'file' ? [u.unit] : [u.read, u.write]) {
      if (!f) continue;
      fds += f.targets.length;
      files++;
      bytes += f.path.length + 8;
    }
  }
  const builder = new PlanBuilder(2 * fds + files + 64, bytes + 4096);
  closeAllBut(builder, inherit);
  const placed = new Map<number, FdTarget[]>();
  const willPlace = new Set(units.flatMap(unitObjrefs));
  const bySocket = new Map<number, FileUnit>();
  for (const u of units.flatMap(fileUnits))
    if (u.file.data.type === 'socket') bySocket.set(u.file.data.sockIno, u);
  const peerOf = (u: FileUnit): FileUnit | undefined => {
    const d = u.file.data;
    return d.type === 'socket' && d.peerIno !== undefined ? bySocket.get(d.peerIno) : undefined;
  };
  const ctx: PlanContext = {
    builder,
    placedFds: (objref) => (placed.get(objref) ?? []).map((t) => t.fd),
    willPlace: (objref) => willPlace.has(objref),
    peerOf,
  };
  const owned = new Set<number>();
  let pending = units;
  while (pending.length > 0) {
    const next: RestoreUnit[] = [];
    for (const unit of pending) {
      if (planUnit(unit, ctx) === 'not-yet') {
        next.push(unit);
        continue;
      }
      markPlaced(unit, placed);
      for (const f of fileUnits(unit)) {
        // A socketpair's planner places both ends at once: the peer is placed too.
        const peer = peerOf(f);
        if (peer && !placed.has(peer.file.objref)) placed.set(peer.file.objref, peer.targets);
        if (!owned.has(f.file.objref)) planOwner(builder, f, ownerPids);
        owned.add(f.file.objref);
      }
    }
    if (next.length === pending.length) {
      const stuck = next[0]!;
      const fd = firstFd(stuck);
      const path = stuck.kind === 'file' ? stuck.unit.path : `pipe:[${stuck.pipeIno}]`;
      throw new ReplayError(fd, path, 'depends on files that cannot be placed first (a cycle?)');
    }
    pending = next;
  }
  return builder.finish(fds);
}

/**
 * Validates and plans the restore of process `pid`'s table (default: the image's first
 * process). `startedWith`: the fds the new process has open before its table is
 * replaced (its own stdio), which an `inherit` rule keeps even where the table has none.
 */
export function planRestore(
  cp: Checkpoint,
  policy: RestorePolicy,
  pid?: number,
  view?: PathView,
  startedWith?: ReadonlySet<number>,
): Plan {
  const table = tableOf(cp, pid);
  const ownerPids = new Set(cp.processes.filter((p) => p.table === table.objref).map((p) => p.pid));
  return planUnits(buildUnits(cp, table, policy, view, startedWith), ownerPids);
}
