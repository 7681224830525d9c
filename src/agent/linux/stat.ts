/**
 * fstat(2) into a reused buffer, returning only the fields fdckpt reads.
 * fs.fstatSync builds a full Stats object with four Dates per call, which is
 * measurable at 10k fds (bench/capture).
 */
import { koffi, libc } from './libc.js';
import { SyscallError } from './errors.js';

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

/**
 * sizeof(struct stat) on x86-64 (asm/stat.h): what glibc's stat/fstat and the raw fstat
 * syscall all fill (glibc passes the kernel's struct through unchanged on x86-64).
 * Layout: dev@0 ino@8 nlink@16 mode@24 uid@28 gid@32 rdev@40 size@48 ...
 */
export const STAT_SIZE = 144;

/** A file's identity as a struct stat says it: device, inode and st_mode. */
export interface StatIdentity {
  dev: number;
  ino: number;
  mode: number;
}

/**
 * Decodes dev, ino and mode of the struct stat at `at` in `buf`. st_dev is the kernel's
 * encoding of the device (new_encode_dev, what every stat call returns); replay decodes
 * the stat of its validation and the one the target's fstat wrote with this one function,
 * so both compare in the same encoding. dev_t and ino_t are u64; the image stores them as
 * safe integers (capture does the same).
 */
export function statIdentity(buf: Buffer, at = 0): StatIdentity {
  return { dev: u64(buf, at), ino: u64(buf, at + 8), mode: buf.readUInt32LE(at + 24) };
}

/**
 * The u64 at `at` as a number, from its two u32 halves: rounded as Number(BigInt) would
 * round it (one rounding of the exact sum), without a BigInt per field per file.
 */
export function u64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at + 4) * 0x1_0000_0000 + buf.readUInt32LE(at);
}

/** As u64 for an i64 (a signed high half): Number(readBigInt64LE) without the BigInt. */
export function i64(buf: Buffer, at: number): number {
  return buf.readInt32LE(at + 4) * 0x1_0000_0000 + buf.readUInt32LE(at);
}

const buf = Buffer.alloc(STAT_SIZE);

/** fstat(2) of an fd of this process. */
export function fstat(fd: number): FileStat {
  if (libc.fstat(fd, buf) === -1) throw new SyscallError('fstat', koffi.errno(), `fd ${fd}`);
  return new FileStat(
    u64(buf, 0),
    u64(buf, 8),
    buf.readUInt32LE(24),
    u64(buf, 16),
    u64(buf, 40),
    i64(buf, 48),
  );
}
