/**
 * stat(2) by path, for replay's validation of thousands of files: returns the
 * two fields it checks, or the errno name, without building a Stats object or
 * throwing on the (expected) failures.
 */
import { koffi, lib } from './libc.js';
import { errnoName } from './errors.js';

const statC = lib.func('int stat(const char *path, _Out_ uint8_t *buf)') as (
  path: string,
  buf: Buffer,
) => number;
const lstatC = lib.func('int lstat(const char *path, _Out_ uint8_t *buf)') as (
  path: string,
  buf: Buffer,
) => number;

// struct stat on x86-64: dev@0 (u64), ino@8 (u64), mode@24 (u32), size@48 (i64); 144 bytes.
const buf = Buffer.alloc(144);

/** What replay compares of a file: its identity (dev, ino), kind and size. */
export interface PathStat {
  mode: number;
  size: number;
  dev: number;
  ino: number;
}

function fields(): PathStat {
  return {
    mode: buf.readUInt32LE(24),
    size: Number(buf.readBigInt64LE(48)),
    // dev_t and ino_t are u64; the image stores them as safe integers (capture does the same).
    dev: Number(buf.readBigUInt64LE(0)),
    ino: Number(buf.readBigUInt64LE(8)),
  };
}

/** st_mode, st_size, st_dev and st_ino of `path` (following symlinks), or the errno name (`ENOENT`). */
export function statPath(path: string): PathStat | { error: string } {
  if (statC(path, buf) === -1) return { error: errnoName(koffi.errno()) };
  return fields();
}

/** As statPath, without following a final symlink (its own st_mode says S_IFLNK). */
export function lstatPath(path: string): PathStat | { error: string } {
  if (lstatC(path, buf) === -1) return { error: errnoName(koffi.errno()) };
  return fields();
}
