/**
 * Pinning: capture's own pidfd_getfd copy of each open file, kept open
 * (CaptureOptions.keepCopy) instead of closed. Taken while the pod is frozen,
 * the copies let the leak check run after the thaw — kcmp compares outside
 * fds with our copy, which the pod can no longer close or replace — so the
 * pod stays frozen only for the capture, and pinning costs no extra syscall.
 */
import { closeFd } from '../linux/process.js';

/** Copies by objref; release() closes them. */
export interface PinnedFiles {
  fds: Map<number, number>;
  /** Pass as CaptureOptions.keepCopy. */
  keepCopy: (objref: number, copy: number) => boolean;
  release(): void;
}

/**
 * A collector for capture's copies. Past `budget` files it stops keeping
 * them (our RLIMIT_NOFILE is finite); findLeaks then compares against the
 * pod's own fd for those files.
 */
export function pinCollector(budget = 15_000): PinnedFiles {
  const fds = new Map<number, number>();
  return {
    fds,
    keepCopy: (objref, copy) => {
      if (fds.size >= budget) return false;
      fds.set(objref, copy);
      return true;
    },
    release: () => {
      for (const fd of fds.values()) closeFd(fd);
      fds.clear();
    },
  };
}
