/**
 * Fast reads of /proc/PID/fd links and /proc/PID/fdinfo files through dirfds:
 * a whole table in one native call (table()), or one fd's openat+read+close and
 * readlinkat, into a reused buffer.
 * About 3–4× cheaper than fs.readFileSync/readlinkSync (bench/capture).
 */
import { koffi, libc } from './libc.js';
import { SyscallError } from './errors.js';
import { readFdTable, type TableEntry } from './fdtable.js';

const c = libc;

const AT_FDCWD = -100;
const O_RDONLY = 0;
const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;
const BUF = 1 << 16;

/** Open handles on one process's /proc/PID/fd and /proc/PID/fdinfo. Close it when done. */
export class ProcFdReader {
  private readonly fdDir: number;
  private readonly infoDir: number;
  private readonly buf = Buffer.allocUnsafe(BUF);

  constructor(readonly pid: number) {
    this.fdDir = open(AT_FDCWD, `/proc/${pid}/fd`, O_DIRECTORY, `/proc/${pid}/fd`);
    try {
      this.infoDir = open(AT_FDCWD, `/proc/${pid}/fdinfo`, O_DIRECTORY, `/proc/${pid}/fdinfo`);
    } catch (err) {
      c.close(this.fdDir);
      throw err;
    }
  }

  /** readlink /proc/PID/fd/FD: a path, `pipe:[ino]`, `anon_inode:[eventfd]`, ... */
  readlink(fd: number): string {
    const n = Number(c.readlinkat(this.fdDir, String(fd), this.buf, BUF));
    if (n === -1) throw new SyscallError('readlinkat', koffi.errno(), `/proc/${this.pid}/fd/${fd}`);
    return this.buf.toString('utf8', 0, n);
  }

  /**
   * The text of /proc/PID/fdinfo/FD (latin1: it is ASCII, and latin1 decodes fastest).
   * An epoll or inotify fd can have a long fdinfo (a line per target): the buffer grows.
   */
  fdinfo(fd: number): string {
    const where = `/proc/${this.pid}/fdinfo/${fd}`;
    const f = open(this.infoDir, String(fd), O_RDONLY, where);
    try {
      let buf = this.buf;
      let len = 0;
      for (;;) {
        if (len === buf.length) buf = Buffer.concat([buf, Buffer.allocUnsafe(buf.length)]);
        const n = Number(c.read(f, buf.subarray(len), buf.length - len));
        if (n === -1) throw new SyscallError('read', koffi.errno(), where);
        if (n === 0) return buf.toString('latin1', 0, len);
        len += n;
      }
    } finally {
      c.close(f);
    }
  }

  /**
   * Every fd of the process, in fd order, through native calls of a few thousand fds each
   * (linux/fdtable.ts): link, fdinfo, and through a pidfd_getfd copy its stat, status
   * flags and owner; files on `skipMounts` get no copy. `each` owns each entry's copy.
   */
  table(
    pidfd: number,
    skipMounts: readonly number[],
    keepCopies: boolean,
    each: (e: TableEntry) => void,
  ): void {
    readFdTable(
      { pid: this.pid, fdDir: this.fdDir, infoDir: this.infoDir, pidfd, skipMounts, keepCopies },
      each,
    );
  }

  close(): void {
    c.close(this.fdDir);
    c.close(this.infoDir);
  }
}

function open(dir: number, path: string, flags: number, where: string): number {
  const fd = c.openat(dir, path, flags | O_CLOEXEC);
  if (fd === -1) throw new SyscallError('openat', koffi.errno(), where);
  return fd;
}
