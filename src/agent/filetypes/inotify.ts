/**
 * inotify instances: each watch (`inotify wd:` lines in fdinfo, hex fields) with the
 * watched file's handle. Restore makes a new instance, reopens each watched file by
 * its handle (the agent resolves it to a path in the target's mount namespace), and
 * adds the watch with its mask at its original watch descriptor.
 */
import { O } from '../model.js';
import { MAX_HANDLE_SZ, kernelDev } from '../linux/fhandle.js';
import type { PathView } from '../linux/pathstat.js';
import { S_IFMT } from '../linux/stat.js';
import { AT_FDCWD } from '../replay-steps/builder.js';
import { ownerOf } from '../replay-steps/by-path.js';
import { ReplayError } from '../replay-steps/errors.js';
import type { FileUnit, PlanContext } from '../replay-steps/types.js';
import type { FdProbe, FileTypeOps, RestoreUnitOf } from './types.js';
import { byAnonLink } from './leak-identity.js';

/** An inotify instance's state in the model: its watches. */
export interface InotifyData {
  type: 'inotify';
  watches: InotifyWatch[];
}

export interface InotifyWatch {
  wd: number;
  ino: number;
  /** The superblock's s_dev as fdinfo prints it (12-bit major above a 20-bit minor), not a stat st_dev. */
  sdev: number;
  mask: number;
  ignoredMask: number;
  /** The watched file's handle (fdinfo `f_handle:`), absent in images before version 4 and on file systems without one. */
  handle?: { type: number; bytes: Buffer };
}

declare module '../model.js' {
  interface FileDataByType {
    inotify: InotifyData;
  }
}

// inotify wd:1 ino:2 sdev:800001 mask:fff ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:0102...
const WATCH =
  /^inotify wd:([0-9a-f]+) ino:([0-9a-f]+) sdev:([0-9a-f]+) mask:([0-9a-f]+) ignored_mask:([0-9a-f]+)(?: fhandle-bytes:([0-9a-f]+) fhandle-type:([0-9a-f]+) f_handle:([0-9a-f]*))?/;

/** IN_ALL_EVENTS: the event bits; a watch needs one. */
const IN_ALL_EVENTS = 0xfff;
/** The mask bits the kernel keeps on a watch and fdinfo prints (inotify_mark_user_mask): events, IN_EXCL_UNLINK, IN_ONESHOT. */
const WATCH_MASK = IN_ALL_EVENTS | 0x04000000 | 0x80000000;
const IN_DELETE_SELF = 0x400;
const MFD_CLOEXEC = 1;
/**
 * Bounds on what an image may ask: watches per instance, and the highest wd. The kernel
 * hands out wds cyclically upward from 1 (idr_alloc_cyclic), so wd N needs N−1 ids used
 * before it: those not kept are burnt by an add and a remove each, two steps per id.
 */
export const MAX_WATCHES = 1 << 16;
export const MAX_WD = 1 << 16;
/** Burnt ids between two reads of their IN_IGNORED events (the queue holds 16384 by default). */
const DRAIN_EVERY = 1024;
/** sizeof(struct inotify_event) without a name: what each IN_IGNORED of a burnt id takes. */
const EVENT_BYTES = 16;
/** Room beyond the IN_IGNORED events, for events of restored watches that arrive meanwhile. */
const DRAIN_SLACK = 16 << 10;

/** A watch as restore adds it: its file found again, by a path the target resolves. */
interface FoundWatch {
  wd: number;
  mask: number;
  path: string;
  dev: number;
  ino: number;
  kind: number;
}

/** What check() found per unit, for restore (the unit object is the key: one per open file). */
const found = new WeakMap<FileUnit, FoundWatch[]>();

function parseWatch(probe: FdProbe, line: string): InotifyWatch[] {
  const m = WATCH.exec(line);
  if (!m) return [];
  const [wd, ino, sdev, mask, ignoredMask] = m.slice(1, 6).map((h) => parseInt(h, 16)) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const watch: InotifyWatch = { wd, ino, sdev, mask, ignoredMask };
  if (m[6] === undefined) return [watch]; // a file system without handles: unrestorable() says so
  const size = parseInt(m[6], 16);
  if (size > MAX_HANDLE_SZ || m[8]!.length !== 2 * size)
    throw new Error(`pid ${probe.pid} fd ${probe.fd}: inotify wd ${wd}: malformed f_handle in fdinfo`);
  return [{ ...watch, handle: { type: parseInt(m[7]!, 16), bytes: Buffer.from(m[8]!, 'hex') } }];
}

/** `wd 3 (ino 1234 on device 254:0)`: a watch as messages name it. */
function named(w: InotifyWatch): string {
  const { major, minor } = kernelDev(w.sdev);
  return `wd ${w.wd} (ino ${w.ino} on device ${major}:${minor})`;
}

/** Why a watch cannot be restored whatever the target (a hostile or an old image), or undefined. */
function badWatch(w: InotifyWatch): string | undefined {
  if (!Number.isInteger(w.wd) || w.wd < 1 || w.wd > MAX_WD) return `wd ${w.wd} is outside 1..${MAX_WD}`;
  if ((w.mask & IN_ALL_EVENTS) === 0 || (w.mask & ~WATCH_MASK) !== 0)
    return `${named(w)}: mask 0x${w.mask.toString(16)} is not one inotify_add_watch keeps`;
  if (w.ignoredMask !== 0)
    return `${named(w)}: ignored_mask 0x${w.ignoredMask.toString(16)} (inotify has none)`;
  if (!w.handle)
    return `${named(w)}: no file handle was captured (its file system has none, or the image predates them)`;
  if (w.handle.bytes.length === 0 || w.handle.bytes.length > MAX_HANDLE_SZ)
    return `${named(w)}: a file handle of ${w.handle.bytes.length} bytes (1 to ${MAX_HANDLE_SZ})`;
  return undefined;
}

function unrestorable(file: { data: { watches: InotifyWatch[] } }): string | undefined {
  const { watches } = file.data;
  if (watches.length > MAX_WATCHES) return `inotify with ${watches.length} watches (at most ${MAX_WATCHES})`;
  const wds = new Set<number>();
  for (const w of watches) {
    const why = badWatch(w);
    if (why !== undefined) return `inotify ${why}`;
    if (wds.has(w.wd)) return `inotify wd ${w.wd} listed twice`;
    wds.add(w.wd);
  }
  return undefined;
}

/**
 * Finds every watched file again, as the target will (`view`): its handle opened on a
 * mount of its file system in the target's mount namespace, the path found checked to
 * be that file. Refuses the fd, naming each watch that fails, before anything runs.
 */
function check(unit: RestoreUnitOf<'inotify'>, fd: number, view: PathView): void {
  const failures: string[] = [];
  const watches: FoundWatch[] = [];
  const inodes = new Set<string>();
  for (const w of [...unit.file.data.watches].sort((a, b) => a.wd - b.wd)) {
    const t = view.openHandle(w.sdev, w.handle!);
    if ('error' in t) {
      failures.push(`${named(w)}: ${t.error}`);
      continue;
    }
    const st = view.lstat(t.path);
    if ('error' in st)
      failures.push(`${named(w)}: its file, at ${t.path}, cannot be reached there: ${st.error}`);
    else if (t.ino !== w.ino || st.ino !== t.ino || st.dev !== t.dev)
      failures.push(
        `${named(w)}: its handle opens ${t.path}, another file (ino ${t.ino}, at the path ${st.ino})`,
      );
    else if (inodes.has(`${st.dev}:${st.ino}`)) failures.push(`${named(w)}: a second watch on one file`);
    else {
      inodes.add(`${st.dev}:${st.ino}`);
      watches.push({
        wd: w.wd,
        mask: w.mask,
        path: t.path,
        dev: st.dev,
        ino: st.ino,
        kind: st.mode & S_IFMT,
      });
    }
  }
  if (failures.length > 0)
    throw new ReplayError(
      fd,
      unit.path,
      `inotify ${failures.join('; ')} (policy skip or devnull can replace it)`,
    );
  found.set(unit, watches);
}

/**
 * inotify_init1 with the saved flags, then each watch in wd order: ids below it burnt
 * (added on a memfd of our own and removed; their IN_IGNORED events read off the queue,
 * so the program never sees them), the file opened O_PATH by its path and checked to be
 * the one validated, the watch added through /proc/self/fd with its mask, expecting the
 * original wd. Events queued at capture are the old instance's: they are not in the image.
 */
function restoreInotify(unit: RestoreUnitOf<'inotify'>, ctx: PlanContext): 'done' {
  const b = ctx.builder;
  const owner = ownerOf(unit);
  const watches = found.get(unit);
  if (!watches) throw new Error(`fd ${owner.fd}: inotify planned without its check (replay/units.ts)`);
  const cloexec = b.nextCloexec(unit.targets);
  const tmp = b.sim.alloc();
  b.add('inotify_init1', [(unit.file.flags & O.NONBLOCK) | (cloexec ? O.CLOEXEC : 0)], tmp, owner);
  let burner: { fd: number; path: { data: number } } | undefined;
  let drain: { data: number } | undefined;
  let queued = 0;
  const drainQueued = (): void => {
    // The queue holds at least these `queued` events, so even a blocking read returns at once.
    drain ??= b.addData(Buffer.alloc(DRAIN_EVERY * EVENT_BYTES + DRAIN_SLACK));
    b.add('read', [tmp, drain, DRAIN_EVERY * EVENT_BYTES + DRAIN_SLACK], 'ok', owner);
    queued = 0;
  };
  let next = 1;
  for (const w of watches) {
    for (; next < w.wd; next++) {
      if (!burner) {
        const fd = b.sim.alloc();
        b.add('memfd_create', [b.addPath('fdckpt-inotify-wd'), MFD_CLOEXEC], fd, owner);
        burner = { fd, path: b.addPath(`/proc/self/fd/${fd}`) };
      }
      b.add('inotify_add_watch', [tmp, burner.path, IN_DELETE_SELF], next, owner);
      b.add('inotify_rm_watch', [tmp, next], 0, owner);
      if (++queued === DRAIN_EVERY) drainQueued();
    }
    const watchOwner = { fd: owner.fd, path: `${owner.path} wd ${w.wd} (${w.path})` };
    const file = b.sim.alloc();
    b.add('openat', [AT_FDCWD, b.addPath(w.path), O.PATH | O.NOFOLLOW | O.CLOEXEC], file, watchOwner);
    b.addCheck({ fd: file, path: w.path, dev: w.dev, ino: w.ino, kind: w.kind }, watchOwner);
    b.add('inotify_add_watch', [tmp, b.addPath(`/proc/self/fd/${file}`), w.mask], w.wd, watchOwner);
    b.add('close', [file], 0, watchOwner);
    b.sim.free(file);
    next = w.wd + 1;
  }
  if (queued > 0) drainQueued();
  if (burner) {
    b.add('close', [burner.fd], 0, owner);
    b.sim.free(burner.fd);
  }
  b.place(tmp, unit.targets, cloexec, owner);
  return 'done';
}

export const inotify = {
  type: 'inotify',
  detectTier: 'link',
  detect: (link) => link === 'anon_inode:inotify',
  checkpoint: (probe) => ({
    type: 'inotify',
    watches: probe.fdinfo.extra.flatMap((line) => parseWatch(probe, line)),
  }),
  unrestorable,
  check,
  collect: (file) =>
    file.data.watches.map((w) => ({
      kind: 'inode' as const,
      id: `${w.sdev}:${w.ino}`,
      via: `inotify wd ${w.wd}`,
    })),
  restore: restoreInotify,
  leakIdentity: byAnonLink,
} satisfies FileTypeOps<'inotify'>;
