/**
 * stat(2) by path, for replay's validation of thousands of files: returns the
 * two fields it checks, or the errno name, without building a Stats object or
 * throwing on the (expected) failures.
 */
import { koffi, lib, sysRaw } from './libc.js';
import { SyscallError, errnoName } from './errors.js';

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

/** How paths are resolved for validation: where the restored program will open them. */
export interface PathView {
  /** Like statPath, in this view; `error` names the call and the view. */
  stat(path: string): { mode: number; size: number } | { error: string };
  close(): void;
}

/** The restorer's own mount namespace and root (the CLI restoring into a child it starts). */
export const hostView: PathView = {
  stat: statPath,
  close: () => undefined,
};

const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;
const O_DIRECTORY = 0o200000;
/** openat2 resolve flag: resolve as if the dirfd were the root ("/" and ".." stay inside). */
const RESOLVE_IN_ROOT = 0x10;

const fstatC = lib.func('int fstat(int fd, _Out_ uint8_t *buf)') as (fd: number, buf: Buffer) => number;
const closeC = lib.func('int close(int fd)') as (fd: number) => number;

/**
 * Paths as process `pid` sees them: through /proc/PID/root with openat2
 * RESOLVE_IN_ROOT, so that absolute paths and symlinks resolve inside its root
 * (its container's file system), not the agent's. The mounts are the ones
 * that root reaches, which are the target's when it lives in its own mount
 * namespace (a container), as magic /proc/PID/root links cross into it.
 */
export function rootView(pid: number): PathView {
  const rootFd = sysRaw(
    'openat',
    ['int', -100],
    ['void *', cString(`/proc/${pid}/root`)],
    ['int', O_PATH | O_DIRECTORY | O_CLOEXEC],
  );
  if (rootFd < 0) throw new SyscallError('openat', -rootFd, `/proc/${pid}/root`);
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(O_PATH | O_CLOEXEC), 0);
  how.writeBigUInt64LE(BigInt(RESOLVE_IN_ROOT), 16);
  let closed = false;
  return {
    stat(path: string) {
      const fd = sysRaw(
        'openat2',
        ['int', rootFd],
        ['void *', cString(path)],
        ['void *', how],
        ['ulong', 24],
      );
      if (fd < 0) return { error: `openat2(pid ${pid} root, ${path}): ${errnoName(-fd)}` };
      try {
        if (fstatC(fd, buf) === -1)
          return { error: `fstat(pid ${pid} root, ${path}): ${errnoName(koffi.errno())}` };
        return { mode: buf.readUInt32LE(24), size: Number(buf.readBigInt64LE(48)) };
      } finally {
        closeC(fd);
      }
    },
    close() {
      if (!closed) closeC(rootFd);
      closed = true;
    },
  };
}

/** A NUL-terminated copy of `s` for a `void *` argument. */
function cString(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf8');
}
