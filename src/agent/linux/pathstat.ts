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

// struct stat on x86-64: mode@24 (u32), size@48 (i64); 144 bytes.
const buf = Buffer.alloc(144);

/** st_mode and st_size of `path` (following symlinks), or the errno name (`ENOENT`). */
export function statPath(path: string): { mode: number; size: number } | { error: string } {
  if (statC(path, buf) === -1) return { error: errnoName(koffi.errno()) };
  return { mode: buf.readUInt32LE(24), size: Number(buf.readBigInt64LE(48)) };
}
