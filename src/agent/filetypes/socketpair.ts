/**
 * Connected unix sockets whose both ends are in the restored table: recreated with
 * socketpair(2), as CRIU does for a pair it holds both ends of (nginx's master/worker
 * channels, a program's own wakeup pairs). Queued bytes are not copied: capture
 * refuses a pair with bytes queued. An end whose peer is elsewhere (another process's
 * table, outside the pod) cannot be recreated and is refused, naming the peer.
 */
import { O } from '../model.js';
import { F_DUPFD, F_SETFL } from '../replay-steps/builder.js';
import { ownerOf } from '../replay-steps/by-path.js';
import { ReplayError } from '../replay-steps/errors.js';
import type { FileUnit, PlanContext } from '../replay-steps/types.js';
import type { DataOf, RestoreUnitOf } from './types.js';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_SEQPACKET = 5;

/** Whether this socket is one end of a unix pair that socketpair(2) can make again. */
export function isPairEnd(d: DataOf<'socket'>): boolean {
  return (
    d.family === AF_UNIX &&
    d.state === 'connected' &&
    d.peerIno !== undefined &&
    (d.sockType === SOCK_STREAM || d.sockType === SOCK_DGRAM || d.sockType === SOCK_SEQPACKET)
  );
}

/** socketpair, each end's status flags, then both ends placed (the second moved out of the first's way). */
export function restorePair(unit: RestoreUnitOf<'socket'>, ctx: PlanContext): 'done' {
  // The end planned first placed both.
  if (ctx.placedFds(unit.file.objref).length > 0) return 'done';
  const b = ctx.builder;
  const owner = ownerOf(unit);
  const peer: FileUnit | undefined = ctx.peerOf(unit);
  if (peer === undefined) {
    throw new ReplayError(
      unit.targets[0]!.fd,
      unit.path,
      `a connected unix socket whose peer socket:[${unit.file.data.peerIno}] is not in this table ` +
        '(a socketpair is recreated only with both ends; policy skip can leave it closed)',
    );
  }
  const sv = b.addData(Buffer.alloc(8));
  const a = b.sim.alloc();
  let z = b.sim.alloc();
  b.add('socketpair', [AF_UNIX, unit.file.data.sockType, 0, sv], 0, owner);
  for (const [end, fd] of [
    [unit, a],
    [peer, z],
  ] as const) {
    const flags = end.file.flags & (O.NONBLOCK | O.ASYNC);
    if (flags) b.add('fcntl', [fd, F_SETFL, flags], 0, ownerOf(end));
  }
  if (unit.targets.some((t) => t.fd === z)) {
    // Placing the first end would overwrite the second before it is placed: move it
    // above every target of the first (the lowest free fd might be one of them).
    const above = Math.max(...unit.targets.map((t) => t.fd)) + 1;
    const moved = b.sim.allocFrom(above);
    b.add('fcntl', [z, F_DUPFD, above], moved, owner);
    z = moved;
  }
  b.place(a, unit.targets, false, owner);
  b.place(z, peer.targets, false, ownerOf(peer));
  return 'done';
}
