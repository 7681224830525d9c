import type { Checkpoint, FileType } from '../model.js';

/** What the caller of capture() may ask. */
export interface CaptureOptions {
  /** Types recorded but never restored (the seed's IGNORE). */
  ignoreTypes?: readonly FileType[];
  /**
   * Files recorded but never restored, by path: a path itself, or every path below
   * one that ends in '/'. Like ignoreFds, an ignored file makes no problem.
   */
  ignorePaths?: readonly string[];
  /** Individual fds recorded but never restored. */
  ignoreFds?: readonly { pid: number; fd: number }[];
  /** Label for the image header (`source`); defaults to the pid list. */
  source?: string;
  /**
   * Called with the pidfd_getfd copy of each newly found open file; returning
   * true keeps it open, and the caller then owns it. Leak detection pins the
   * pod's files this way while it is frozen, at no extra syscall per file.
   */
  keepCopy?: (objref: number, copy: number) => boolean;
  /**
   * Stop every thread of the given processes (ptrace) while their tables are
   * read, and resume them on every path. For processes nothing else freezes; a
   * cgroup capture freezes the cgroup instead and leaves this off.
   */
  stopTasks?: boolean;
}

/** Why one fd cannot be checkpointed (restored later) as it is. */
export type ProblemKind = 'unlinked' | 'locked' | 'owned' | 'unsupported' | 'vanished';

/** One refused fd, with a message that names the process, the fd and the reason. */
export interface FdProblem {
  kind: ProblemKind;
  pid: number;
  fd: number;
  /** The open file's objref, when the fd was captured at all. */
  file?: number;
  /** pid, fd, path and why; no hint (each front end names its own way to ignore: a flag, a CR field). */
  message: string;
  /** Ignoring this file type would accept the fd (absent when no ignore can: FUSE, locks, unlinked files). */
  ignoreType?: FileType;
}

/**
 * Capture always records everything it can see; `problems` lists the fds that
 * would make the checkpoint unrestorable (not covered by an ignore). Callers
 * that write an image refuse when it is non-empty; preflight reports it.
 */
export interface CaptureResult {
  checkpoint: Checkpoint;
  problems: FdProblem[];
  stats: CaptureStats;
  timings: CaptureTimings;
}

/** The same name and meaning as a cgroup capture's timings. */
export interface CaptureTimings {
  /** From the first stop request to the last resume (0 when nothing was stopped). */
  frozenMs: number;
}

/** Work done, for benchmarks and for tests of the dedup's growth. */
export interface CaptureStats {
  fds: number;
  files: number;
  /** kcmp(KCMP_FILE) calls made by dedup. */
  kcmpCalls: number;
}
