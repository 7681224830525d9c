/**
 * stat(2) by path, for replay's validation of thousands of files: returns the fields
 * it checks, or the errno name, without building a Stats object or throwing on the
 * (expected) failures.
 */
import { koffi, lib, libc, sysRaw } from './libc.js';
import { readFileSync } from 'node:fs';
import { SyscallError, errnoName } from './errors.js';
import { openHandle, type FileHandle, type HandleTarget } from './fhandle.js';
import { STAT_SIZE, i64, statIdentity, u64 } from './stat.js';
import { nativeLib } from './native-lib.js';

const statC = lib.func('int stat(const char *path, _Out_ uint8_t *buf)') as (
  path: string,
  buf: Buffer,
) => number;
const lstatC = lib.func('int lstat(const char *path, _Out_ uint8_t *buf)') as (
  path: string,
  buf: Buffer,
) => number;

// struct stat on x86-64 (see stat.ts): size@48 (i64) besides the identity.
const buf = Buffer.alloc(STAT_SIZE);

/** What replay compares of a file: its identity (dev, ino), kind and size. */
export interface PathStat {
  mode: number;
  size: number;
  dev: number;
  ino: number;
}

/** By statIdentity, the one decoder of every struct stat replay compares (one st_dev encoding). */
function fields(): PathStat {
  return { ...statIdentity(buf), size: i64(buf, 48) };
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

/** How paths are resolved for validation: where the restored program will open them. */
export interface PathView {
  /** Like statPath, in this view; `error` names the call and the view. */
  stat(path: string): PathStat | { error: string };
  /** Like lstatPath (a final symlink is not followed), in this view. */
  lstat(path: string): PathStat | { error: string };
  /**
   * Opens a file handle of the superblock `sdev` (fdinfo's encoding) on one of the mounts
   * this view's process has (fhandle.ts openHandle): the path found, which the caller
   * still checks with lstat in this view, or why not.
   */
  openHandle(sdev: number, handle: FileHandle): HandleTarget | { error: string };
  /** lstat and stat of many paths in one native call, as `lstat` and `stat` would answer each. */
  statMany(paths: readonly string[]): PathStats[];
  close(): void;
}

/** What a view's lstat and stat answered for one path. */
export interface PathStats {
  lstat: PathStat | { error: string };
  stat: PathStat | { error: string };
}

type StatPathsFn = (rootFd: number, paths: Buffer, len: number, n: number, out: Buffer) => number;
let statPathsFn: StatPathsFn | undefined;
const STAT_OUT = 32;
const STAT_FAILED_FSTAT = 0x40000000;

/**
 * lstat and stat of every path through native/fdckpt-table.c's fdckpt_stat_paths: with
 * `rootFd` (>= 0) inside that root, else in this process's view. `name(err, path, call)`
 * words a failure as the view's own lstat/stat would.
 */
function statPathsNative(
  rootFd: number,
  paths: readonly string[],
  name: (errno: number, path: string, call: 'open' | 'fstat') => string,
): PathStats[] {
  statPathsFn ??= nativeLib().func(
    'long fdckpt_stat_paths(int root_fd, const uint8_t *paths, size_t len, int32_t n, _Out_ uint8_t *out)',
  ) as StatPathsFn;
  if (paths.length === 0) return [];
  const packed = Buffer.from(paths.join('\0') + '\0', 'utf8');
  const out = Buffer.allocUnsafe(paths.length * 2 * STAT_OUT);
  const n = Number(statPathsFn(rootFd, packed, packed.length, paths.length, out));
  if (n !== paths.length) throw new Error(`fdckpt_stat_paths: ${n} for ${paths.length} paths`);
  const one = (at: number, path: string): PathStat | { error: string } => {
    const err = out.readInt32LE(at);
    if (err !== 0)
      return { error: name(err & ~STAT_FAILED_FSTAT, path, err & STAT_FAILED_FSTAT ? 'fstat' : 'open') };
    return {
      mode: out.readUInt32LE(at + 4),
      size: i64(out, at + 8),
      dev: u64(out, at + 16),
      ino: u64(out, at + 24),
    };
  };
  return paths.map((path, i) => ({
    lstat: one(i * 2 * STAT_OUT, path),
    stat: one(i * 2 * STAT_OUT + STAT_OUT, path),
  }));
}

/**
 * `view`, answering lstat and stat of `paths` from one statMany call made now (a restore
 * validates every by-path file of a table: one FFI call instead of two or more per file);
 * other paths, and everything else, go to `view`.
 */
export function prefetched(view: PathView, paths: readonly string[]): PathView {
  // A NUL would split a packed path in two: such a path (no image has one) goes to `view`.
  const unique = [...new Set(paths)].filter((p) => !p.includes('\0'));
  const got = view.statMany(unique);
  const known = new Map(unique.map((p, i) => [p, got[i]!]));
  return {
    stat: (path) => known.get(path)?.stat ?? view.stat(path),
    lstat: (path) => known.get(path)?.lstat ?? view.lstat(path),
    openHandle: (sdev, handle) => view.openHandle(sdev, handle),
    statMany: (more) => view.statMany(more),
    close: () => view.close(),
  };
}

/** The restorer's own mount namespace and root (the CLI restoring into a child it starts). */
export const hostView: PathView = {
  stat: statPath,
  lstat: lstatPath,
  openHandle: (sdev, handle) =>
    openHandle(
      {
        mountinfo: readFileSync('/proc/self/mountinfo', 'utf8'),
        openMountPoint: (path) => {
          const fd = libc.openat(-100, path, O_DIRECTORY | O_CLOEXEC);
          return fd < 0 ? -koffi.errno() : fd;
        },
      },
      sdev,
      handle,
    ),
  statMany: (paths) => statPathsNative(-1, paths, (errno) => errnoName(errno)),
  close: () => undefined,
};

const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;
const O_DIRECTORY = 0o200000;
const O_NOFOLLOW = 0o400000;
/** openat2 resolve flag: resolve as if the dirfd were the root ("/" and ".." stay inside). */
const RESOLVE_IN_ROOT = 0x10;

/** struct open_how {flags, mode, resolve} for an open inside a root (O_PATH unless `path` is false). */
function openHow(flags: number, path = true): Buffer {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt((path ? O_PATH : 0) | O_CLOEXEC | flags), 0);
  how.writeBigUInt64LE(BigInt(RESOLVE_IN_ROOT), 16);
  return how;
}

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
  const follow = openHow(0);
  // O_PATH with O_NOFOLLOW opens a final symlink itself: fstat then says S_IFLNK.
  const noFollow = openHow(O_NOFOLLOW);
  let closed = false;
  const statWith = (how: Buffer, path: string): PathStat | { error: string } => {
    const fd = sysRaw('openat2', ['int', rootFd], ['void *', cString(path)], ['void *', how], ['ulong', 24]);
    if (fd < 0) return { error: `openat2(pid ${pid} root, ${path}): ${errnoName(-fd)}` };
    try {
      if (libc.fstat(fd, buf) === -1)
        return { error: `fstat(pid ${pid} root, ${path}): ${errnoName(koffi.errno())}` };
      return fields();
    } finally {
      libc.close(fd);
    }
  };
  // A mount point as PID's mountinfo prints it is relative to PID's root: opened inside it,
  // and not O_PATH, which open_by_handle_at does not take as its mount fd (EBADF).
  const mountHow = openHow(O_DIRECTORY, false);
  const openMountPoint = (path: string): number =>
    sysRaw('openat2', ['int', rootFd], ['void *', cString(path)], ['void *', mountHow], ['ulong', 24]);
  return {
    stat: (path) => statWith(follow, path),
    lstat: (path) => statWith(noFollow, path),
    openHandle: (sdev, handle) =>
      openHandle({ mountinfo: readFileSync(`/proc/${pid}/mountinfo`, 'utf8'), openMountPoint }, sdev, handle),
    statMany: (paths) =>
      statPathsNative(
        rootFd,
        paths,
        (errno, path, call) =>
          `${call === 'open' ? 'openat2' : 'fstat'}(pid ${pid} root, ${path}): ${errnoName(errno)}`,
      ),
    close() {
      if (!closed) libc.close(rootFd);
      closed = true;
    },
  };
}

/** A NUL-terminated copy of `s` for a `void *` argument. */
function cString(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf8');
}
