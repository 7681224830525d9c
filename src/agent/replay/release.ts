/**
 * Letting a held fdckpt-hold go (native/fdckpt-hold.c). Plain SIGUSR1 runs CMD
 * as it is; with socket handoff the launcher runs with --listen-fds and learns
 * what to tell CMD from the release itself: LISTEN_FDS is the value of a
 * sigqueue(SIGUSR1, N), LISTEN_PID its own pid, and LISTEN_FDNAMES — a string, too
 * long for a signal's value — is written first into a memfd the launcher made
 * for it before its fork. This is the one way for both kinds of launcher: the one
 * replay spawns (the CLI) and the one a pod's container runs, whose environment
 * was fixed when the pod started.
 */
import { readFileSync, readdirSync, readlinkSync, writeSync } from 'node:fs';
import { killPid, sigqueuePid } from '../linux/ptrace.js';
import { MFD_CLOEXEC, closeFd, memfdCreate, pidfdGetfd, pidfdOpen } from '../linux/process.js';

const SIGUSR1 = 10;

/** What socket handoff tells the program (see handoff.ts). */
export interface ListenRelease {
  /** LISTEN_FDS. */
  count: number;
  /** LISTEN_FDNAMES entries. */
  names: readonly string[];
}

/** The fd link of fdckpt-hold's names memfd (NAMES_MEMFD in fdckpt-hold.c). */
export const NAMES_MEMFD_LINK = '/memfd:fdckpt-hold:LISTEN_FDNAMES (deleted)';

function mntIdOf(fdinfo: string): number | undefined {
  const m = /^mnt_id:\s*(\d+)$/m.exec(fdinfo);
  return m ? Number(m[1]) : undefined;
}

let shmMount: number | undefined;

/**
 * The mount every memfd is on (the kernel's internal shm mount, one for all mount
 * namespaces): read from a memfd of our own, once.
 */
function memfdMount(): number {
  if (shmMount !== undefined) return shmMount;
  const fd = memfdCreate('fdckpt-probe', MFD_CLOEXEC);
  try {
    const id = mntIdOf(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    if (id === undefined) throw new Error('/proc/self/fdinfo: no mnt_id line');
    shmMount = id;
    return id;
  } finally {
    closeFd(fd);
  }
}

/**
 * Writes LISTEN_FDNAMES into held process `pid`'s names memfd. The fd is chosen
 * from /proc alone (its link, and its mount being the memfd mount) before it is
 * touched: a process in the pod could hold a deleted file of that name on a FUSE
 * mount, whose open or close would wait on a server in the pod. A memfd's write
 * never waits on anyone.
 */
export function writeListenNames(pid: number, names: readonly string[]): void {
  const dir = `/proc/${pid}/fd`;
  const shm = memfdMount();
  const fd = readdirSync(dir).find((n) => {
    try {
      return (
        readlinkSync(`${dir}/${n}`) === NAMES_MEMFD_LINK &&
        mntIdOf(readFileSync(`/proc/${pid}/fdinfo/${n}`, 'utf8')) === shm
      );
    } catch {
      return false;
    }
  });
  if (fd === undefined)
    throw new Error(
      `launcher pid ${pid} has no LISTEN_FDNAMES memfd: socket handoff needs fdckpt-hold --listen-fds (of this version)`,
    );
  const pidfd = pidfdOpen(pid);
  try {
    const copy = pidfdGetfd(pidfd, Number(fd), pid);
    try {
      const text = Buffer.from(names.join(':'));
      let done = 0;
      while (done < text.length) done += writeSync(copy, text, done, text.length - done, done);
    } finally {
      closeFd(copy);
    }
  } finally {
    closeFd(pidfd);
  }
}

/**
 * Releases held process `pid` (already seized by the caller): SIGUSR1, or for socket
 * handoff the names into its memfd and then sigqueue(SIGUSR1, count).
 */
export function releaseHeld(pid: number, listen?: ListenRelease): void {
  if (listen === undefined) {
    killPid(pid, SIGUSR1);
    return;
  }
  writeListenNames(pid, listen.names);
  sigqueuePid(pid, SIGUSR1, listen.count);
}
