/**
 * fstat(2) into a reused buffer, returning only the fields fdckpt reads.
 * fs.fstatSync builds a full Stats object with four Dates per call, which is
 * measurable at 10k fds (bench/capture).
 */
import { koffi, lib } from './libc.js';
import { SyscallError } from './errors.js';

const fstatC = lib.func('int fstat(int fd, _Out_ uint8_t *buf)') as (fd: number, buf: Buffer) => number;

/** File type bits of st_mode (sys/stat.h). */
export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;

/** The part of struct stat that capture uses, with the usual predicates. */
export class FileStat {
  constructor(
    readonly dev: number,
    readonly ino: number,
    readonly mode: number,
    readonly nlink: number,
    readonly rdev: number,
    readonly size: number,
  ) {}
  isFile(): boolean {
    return (this.mode & S_IFMT) === S_IFREG;
  }
  isDirectory(): boolean {
    return (this.mode & S_IFMT) === S_IFDIR;
  }
  isFIFO(): boolean {
    return (this.mode & S_IFMT) === S_IFIFO;
  }
  isCharacterDevice(): boolean {
    return (this.mode & S_IFMT) === S_IFCHR;
  }
  isBlockDevice(): boolean {
    return (this.mode & S_IFMT) === S_IFBLK;
  }
  isSocket(): boolean {
    return (this.mode & S_IFMT) === S_IFSOCK;
  }
}

// struct stat on x86-64: dev@0 ino@8 nlink@16 mode@24 uid@28 gid@32 rdev@40 size@48 ... (144 bytes)
const buf = Buffer.alloc(144);

/** fstat(2) of an fd of this process. */
export function fstat(fd: number): FileStat {
  if (fstatC(fd, buf) === -1) throw new SyscallError('fstat', koffi.errno(), `fd ${fd}`);
  return new FileStat(
    Number(buf.readBigUInt64LE(0)),
    Number(buf.readBigUInt64LE(8)),
    buf.readUInt32LE(24),
    Number(buf.readBigUInt64LE(16)),
    Number(buf.readBigUInt64LE(40)),
    Number(buf.readBigInt64LE(48)),
  );
}
