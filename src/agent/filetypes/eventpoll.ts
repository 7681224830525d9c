/**
 * epoll instances: each registration (`tfd:` line in fdinfo) with its events,
 * data and target inode. Capture resolves each target to the captured file
 * after the whole table is read (capture/resolve.ts).
 */
import { O } from '../model.js';
import { ownerOf } from '../replay-steps/by-path.js';
import { ReplayError } from '../replay-steps/errors.js';
import type { PlanContext, PlanResult } from '../replay-steps/types.js';
import { byAnonLink } from './leak-identity.js';
import type { FileTypeOps, RestoreUnitOf } from './types.js';

/** An epoll's state in the model: its registrations. */
export interface EventpollData {
  type: 'eventpoll';
  targets: EpollTarget[];
}

/** One epoll registration, as /proc/PID/fdinfo of the epoll fd shows it (`tfd:` lines). */
export interface EpollTarget {
  /** fd number of the target in the epoll owner's table at capture time. */
  tfd: number;
  events: number;
  data: bigint;
  /** inode of the target file, to find it again. */
  ino: number;
  /** objref of the target file, when it was found among the captured files. */
  file?: number;
}

declare module '../model.js' {
  interface FileDataByType {
    eventpoll: EventpollData;
  }
}

// tfd:        5 events:       19 data:                5  pos:0 ino:1c03 sdev:d
const TFD = /^tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)\s+pos:\s*(\d+)\s+ino:\s*([0-9a-f]+)/;

export function parseEpollTargets(lines: readonly string[]): EpollTarget[] {
  const targets: EpollTarget[] = [];
  for (const line of lines) {
    const m = TFD.exec(line);
    if (!m) continue;
    targets.push({
      tfd: Number(m[1]),
      events: parseInt(m[2]!, 16),
      data: BigInt(`0x${m[3]!}`),
      ino: parseInt(m[5]!, 16),
    });
  }
  return targets;
}

const EPOLL_CTL_ADD = 1;

/** epoll_create1 and one EPOLL_CTL_ADD per saved target, after every target is placed. */
function restoreEventpoll(unit: RestoreUnitOf<'eventpoll'>, ctx: PlanContext): PlanResult {
  const owner = ownerOf(unit);
  const tfds: number[] = [];
  for (const t of unit.file.data.targets) {
    if (t.file === undefined)
      throw new ReplayError(owner.fd, owner.path, `epoll target fd ${t.tfd} was not captured`);
    if (!ctx.willPlace(t.file))
      throw new ReplayError(owner.fd, owner.path, `epoll target fd ${t.tfd} is not restored`);
    const placed = ctx.placedFds(t.file);
    if (placed.length === 0) return 'not-yet';
    // Register under the saved fd number when it still holds the target (fdinfo shows tfd).
    tfds.push(placed.includes(t.tfd) ? t.tfd : placed[0]!);
  }
  const b = ctx.builder;
  const cloexec = b.nextCloexec(unit.targets);
  const tmp = b.sim.alloc();
  b.add('epoll_create1', [cloexec ? O.CLOEXEC : 0], tmp, owner);
  unit.file.data.targets.forEach((t, i) => {
    const ev = Buffer.alloc(12); // struct epoll_event is packed on x86-64
    ev.writeUInt32LE(t.events >>> 0, 0);
    ev.writeBigUInt64LE(BigInt.asUintN(64, t.data), 4);
    b.add('epoll_ctl', [tmp, EPOLL_CTL_ADD, tfds[i]!, b.addData(ev)], 0, owner);
  });
  b.place(tmp, unit.targets, cloexec, owner);
  return 'done';
}

export const eventpoll = {
  type: 'eventpoll',
  detectTier: 'link',
  detect: (link) => link === 'anon_inode:[eventpoll]',
  checkpoint: (probe) => ({ type: 'eventpoll', targets: parseEpollTargets(probe.fdinfo.extra) }),
  // The kernel reports the fd number used at EPOLL_CTL_ADD and the target's inode: the
  // registration is found again if that fd of the owner's table still refers to a file
  // with that inode.
  resolve: (file, fdToFile) => {
    for (const target of file.data.targets) {
      const candidate = fdToFile.get(target.tfd);
      if (candidate && candidate.ino === target.ino) target.file = candidate.objref;
    }
  },
  collect: (file) =>
    file.data.targets.flatMap((t) =>
      t.file === undefined
        ? []
        : [{ kind: 'file' as const, id: String(t.file), via: `epoll target fd ${t.tfd}` }],
    ),
  restore: restoreEventpoll,
  leakIdentity: byAnonLink,
} satisfies FileTypeOps<'eventpoll'>;
