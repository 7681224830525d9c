/**
 * The per-file-type operations table (the seed's `ckpt_obj_ops` /
 * `restore_file_ops[]`, CRIU's `fdtype_ops`): one module per type implements
 * it, filetypes/index.ts registers them all.
 */
import type { FileStat } from '../linux/stat.js';
import type { FileData, FileRecord, FileType } from '../model.js';
import type { Fdinfo } from '../procfs/fdinfo.js';
import type { PathView } from '../linux/pathstat.js';
import type { FileUnit, PipeUnit, PlanContext, PlanResult } from '../replay-steps/types.js';

/** What capture knows about one fd when it asks a type module for its state. */
export interface FdProbe {
  pid: number;
  fd: number;
  /**
   * A pidfd_getfd copy of the fd in *this* process: same open file. -1 for a type with
   * `readsNoCopy` when capture did not keep the copy (native/fdckpt-table.c closes the
   * copies of regular files, directories and devices reached by a path, memfds aside).
   */
  copy: number;
  /** readlink of /proc/PID/fd/FD */
  link: string;
  fdinfo: Fdinfo;
  stat: FileStat;
}

/** A reference an open file holds to another object (an edge of the leak graph). */
export interface ObjectRef {
  /** 'file' refers to a FileRecord by objref; the others to kernel objects by id. */
  kind: 'file' | 'pipe' | 'socket' | 'tty' | 'inode';
  /** objref for 'file'; `pipe:[ino]`, `socket:[ino]`, `pty:N`, `DEV:INO` for the others. */
  id: string;
  /** Why the reference exists, for reports: "epoll target", "peer", "other end". */
  via: string;
}

/**
 * How the leak check (collect/podview.ts) recognises an open file in another process's
 * fd table from that fd's /proc link and stat alone: `selfKey`, a key of procfs/keys.ts
 * (`pipe:[N]`, `inode:DEV:INO`, `pty:DEV:N`); or, for a file on the anonymous inode every
 * such file shares, `anonLink`, the link they all show (only kcmp tells them apart).
 * Empty: nothing outside can name it.
 */
export interface LeakIdentity {
  selfKey?: string;
  anonLink?: string;
}

/** A pod fd, as the leak check names the fd that holds a file. */
export interface HolderFd {
  pid: number;
  fd: number;
}

/**
 * What an outside fd on the same object as a pod file, through an open file of its own,
 * means (collect/classify.ts): the other end of a pipe, the other side of a pty, the
 * same FIFO. A type without one gives a shared-inode note (regular files) or nothing.
 */
export type SameObjectVia = 'other end of pipe' | 'pty peer' | 'fifo shared';

export type DataOf<T extends FileType> = Extract<FileData, { type: T }>;

/** What a type's restore planner gets: its file and target fds (for a pipe, both ends). */
export type RestoreUnitOf<T extends FileType> = T extends 'pipe'
  ? PipeUnit
  : FileUnit & { file: FileRecord & { data: DataOf<T> } };

/**
 * Detection tiers, most specific first. `link`: known by its /proc link alone (`pipe:[`,
 * `socket:[`, `anon_inode:[eventfd]`…). `special`: a file with a path that `path` would
 * accept too (a memfd is a regular tmpfs file, a tty a character device). `mode`: a path
 * of a given stat mode (directory, FIFO). `path`: any other path (regular). `fallback`:
 * anything at all (anon), last. Within a tier, detect()s must not overlap.
 */
export const DETECT_TIERS = ['link', 'special', 'mode', 'path', 'fallback'] as const;
export type DetectTier = (typeof DETECT_TIERS)[number];

/** A type whose files replay reopens by their path (replay/by-path.ts), checked first (replay/units.ts). */
export interface ReopenByPath {
  /** What the path must still hold, for the refusal: "no longer a directory". */
  noun: string;
  /** Whether what is at the path now (its st_mode file type) is something this type reopens. */
  accepts(kind: number, file: FileRecord): boolean;
}

export interface FileTypeOps<T extends FileType> {
  type: T;
  /**
   * How specific detect() is, which orders detection (DETECT_TIERS, first tier first):
   * the registry derives the order from it, so a new type cannot be left out of it.
   */
  detectTier: DetectTier;
  /**
   * True when checkpoint() reads only the probe's link, fdinfo and stat, never `copy`:
   * capture may have closed the copy before (a type without it that meets a closed copy
   * is an internal error, not a wrong image).
   */
  readsNoCopy?: true;
  /** Does this fd belong to this type? Called in tier order; the first match wins. */
  detect(link: string, stat: FileStat, fdinfo: Fdinfo): boolean;
  /** Reads the type's own state from the probe. Throws a SyscallError/Error naming the fd. */
  checkpoint(probe: FdProbe): DataOf<T>;
  /**
   * Called once all tables are read, with the fd table of one process holding this file
   * (fd number → captured file): link this file's state to the other captured files it
   * names by fd number. An epoll names its targets by the fd used at EPOLL_CTL_ADD.
   */
  resolve?: (
    file: FileRecord & { data: DataOf<T> },
    fdToFile: ReadonlyMap<number, FileRecord | undefined>,
  ) => void;
  /**
   * Why this particular file cannot be restored although its type can (state
   * that capture could not take, e.g. a memfd too large to copy), or undefined.
   * Capture and replay add their own remedy (an ignore, a policy).
   */
  unrestorable?: (file: FileRecord & { data: DataOf<T> }) => string | undefined;
  /**
   * Present for the types reopened by path: replay validates the path against it (and
   * capture calls such a file unlinked when its link count is 0).
   */
  byPath?: ReopenByPath;
  /**
   * Checks what the file names outside itself against the target's file system as `view`
   * resolves it (an inotify's watched files), when replay builds the file's unit
   * (replay/units.ts), before anything runs: throws a ReplayError naming `fd` (the file's
   * first fd), which replay reports with every other refused fd. What it finds for
   * `restore` the module keeps.
   */
  check?: (unit: FileUnit & { file: FileRecord & { data: DataOf<T> } }, fd: number, view: PathView) => void;
  /**
   * How the leak check keys this file (LeakIdentity). Absent: a file with a path is
   * keyed by its device and inode (filetypes/leak-identity.ts, `byInode`).
   */
  leakIdentity?: (file: FileRecord & { data: DataOf<T> }, holder: HolderFd) => LeakIdentity;
  /** Present when an outside open file on this object is a leak, and which (SameObjectVia). */
  sameObjectVia?: SameObjectVia;
  /** The objects this file references besides itself (epoll targets, pipe peers, ...). */
  collect(file: FileRecord & { data: DataOf<T> }): ObjectRef[];
  /**
   * Plans the syscalls that recreate the file in the target and put it at its
   * fds (replay/builder.ts), or answers 'not-yet' when it needs a file that is
   * not placed yet (CRIU's retry ordering). Absent: the type cannot be restored, and its
   * fds must be ignored to be checkpointed (capture/problems.ts asks `isRestorable`).
   */
  restore?: (unit: RestoreUnitOf<T>, ctx: PlanContext) => PlanResult;
}
