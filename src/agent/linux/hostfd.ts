/**
 * The host scan's hot path: readlink and stat of /proc/PID/fd/N through one
 * dirfd per process into reused buffers, without exceptions for fds that
 * vanish (on a live host some always do). fs.readlinkSync/statSync cost several
 * times more per call (string paths, Stats objects, thrown errors).
 */
import { koffi, lib } from './libc.js';
import { SyscallError } from './errors.js';

const c = {
  open: lib.func('int open(const char *path, int flags)') as (p: string, f: number) => number,
  close: lib.func('int close(int fd)') as (fd: number) => number,
  readlinkat: lib.func('long readlinkat(int dirfd, const char *path, _Out_ uint8_t *buf, size_t n)') as (
    d: number,
    p: string,
    b: Buffer,
    n: number,
  ) => number,
  fstatat: lib.func('int fstatat(int dirfd, const char *path, _Out_ uint8_t *buf, int flags)') as (
    d: number,
    p: string,
    b: Buffer,
    f: number,
  ) => number,
};

const O_RDONLY_DIRECTORY_CLOEXEC = 0o200000 | 0o2000000;
const BUF = 4096 + 1;
const linkBuf = Buffer.allocUnsafe(BUF);
// struct stat on x86-64: dev@0 ino@8 mode@24 rdev@40 (144 bytes)
const statBuf = Buffer.alloc(144);

/** What the scan needs from stat(2) of an fd's target. */
export interface TargetStat {
  dev: number;
  ino: number;
  mode: number;
  rdev: number;
}

/** An open /proc/PID/fd directory. */
export class FdDir {
  private constructor(
    readonly pid: number,
    private readonly dirfd: number,
  ) {}

  /** Opens /proc/PID/fd, or returns undefined when the process is gone or has no fd table. */
  static open(pid: number): FdDir | undefined {
    const dirfd = c.open(`/proc/${pid}/fd`, O_RDONLY_DIRECTORY_CLOEXEC);
    return dirfd < 0 ? undefined : new FdDir(pid, dirfd);
  }

  /** The link of fd `name` (`pipe:[12]`, a path...), or undefined if it was closed meanwhile. */
  readlink(name: string): string | undefined {
    const n = Number(c.readlinkat(this.dirfd, name, linkBuf, BUF));
    return n < 0 ? undefined : linkBuf.toString('utf8', 0, n);
  }

  /** stat(2) of what fd `name` refers to (following the link), or undefined. */
  stat(name: string): TargetStat | undefined {
    if (c.fstatat(this.dirfd, name, statBuf, 0) === -1) return undefined;
    return {
      dev: Number(statBuf.readBigUInt64LE(0)),
      ino: Number(statBuf.readBigUInt64LE(8)),
      mode: statBuf.readUInt32LE(24),
      rdev: Number(statBuf.readBigUInt64LE(40)),
    };
  }

  close(): void {
    if (c.close(this.dirfd) === -1) throw new SyscallError('close', koffi.errno(), `/proc/${this.pid}/fd`);
  }
}
