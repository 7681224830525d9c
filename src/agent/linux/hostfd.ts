/**
 * The host scan's hot path: every fd link of a process in one native call
 * (native/fdckpt-scan.c, into a reused buffer), and stat of an fd's target
 * through the same dirfd, without exceptions for fds that vanish (on a live
 * host some always do). One koffi readlinkat per fd cost about as much as the
 * kernel's readlink itself (bench/RESULTS.md, issue 14).
 */
import { koffi, lib, libc } from './libc.js';
import { SyscallError } from './errors.js';
import { nativeLib } from './native-lib.js';
import { u64 } from './stat.js';

export { scanLibPath } from './native-lib.js';

const c = {
  open: lib.func('int open(const char *path, int flags)') as (p: string, f: number) => number,
  fstatat: lib.func('int fstatat(int dirfd, const char *path, _Out_ uint8_t *buf, int flags)') as (
    d: number,
    p: string,
    b: Buffer,
    f: number,
  ) => number,
};

type FdLinksFn = (dirfd: number, buf: Buffer, cap: number) => number;
let fdLinks: FdLinksFn | undefined;

/** Loaded on first use, so that commands that never scan do not need the library. */
function nativeFdLinks(): FdLinksFn {
  fdLinks ??= nativeLib().func(
    'long fdckpt_fd_links(int dirfd, _Out_ uint8_t *buf, size_t cap)',
  ) as FdLinksFn;
  return fdLinks;
}

/** The smallest buffer links() accepts: one record of the longest link (PATH_MAX) and the end record. */
export const LINKS_MIN_BUFFER = 8 + 4096 + 8;
// ~20k fds of short links (`socket:[123456]`) per call; larger tables take more calls, not more memory.
const linksBuf = Buffer.allocUnsafe(1 << 20);

const O_RDONLY_DIRECTORY_CLOEXEC = 0o200000 | 0o2000000;
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

  /** Opens /proc/PID/fd, or returns undefined when the process is gone or may not be inspected. */
  static open(pid: number): FdDir | undefined {
    const dirfd = c.open(`/proc/${pid}/fd`, O_RDONLY_DIRECTORY_CLOEXEC);
    return dirfd < 0 ? undefined : new FdDir(pid, dirfd);
  }

  /**
   * Calls `each` for every fd, in fd order, with its link (`pipe:[12]`, a path...) or
   * undefined when it could not be read (closed meanwhile, EACCES). Returns the number
   * of fds listed; undefined when the directory could not be read at all (the process
   * is gone). A process that exits between two buffers' worth keeps what was listed.
   * Call once per FdDir. `buf` (at least LINKS_MIN_BUFFER bytes) is for tests.
   */
  links(each: (fd: number, link: string | undefined) => void, buf: Buffer = linksBuf): number | undefined {
    const read = nativeFdLinks();
    let count = 0;
    for (;;) {
      const n = Number(read(this.dirfd, buf, buf.length));
      if (n === -22) throw new Error(`fd link buffer of ${buf.length} bytes: below ${LINKS_MIN_BUFFER}`);
      if (n < 0) return count === 0 ? undefined : count;
      let at = 0;
      while (at < n) {
        const fd = buf.readInt32LE(at);
        if (fd < 0) return count; // end of the directory
        const len = buf.readInt32LE(at + 4);
        at += 8;
        count++;
        if (len < 0) {
          each(fd, undefined);
        } else {
          each(fd, buf.toString('utf8', at, at + len));
          at += len;
        }
      }
      // No end record: the buffer filled; the directory offset is where the next call goes on.
    }
  }

  /** stat(2) of what `fd` refers to (following the link), or undefined. */
  stat(fd: number): TargetStat | undefined {
    if (c.fstatat(this.dirfd, String(fd), statBuf, 0) === -1) return undefined;
    return {
      dev: u64(statBuf, 0),
      ino: u64(statBuf, 8),
      mode: statBuf.readUInt32LE(24),
      rdev: u64(statBuf, 40),
    };
  }

  close(): void {
    if (libc.close(this.dirfd) === -1) throw new SyscallError('close', koffi.errno(), `/proc/${this.pid}/fd`);
  }
}
