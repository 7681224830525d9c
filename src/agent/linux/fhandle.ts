/**
 * File handles (name_to_handle_at(2)'s `struct file_handle`) opened again with
 * open_by_handle_at(2), for replay's validation of what an inotify watch names: the
 * kernel reports a watched inode by its handle (fdinfo `f_handle:`), which still opens
 * the file after a rename, and fails once the file is gone. Needs CAP_DAC_READ_SEARCH
 * (the agent has it; a restored program need not, so the agent resolves the handle and
 * the program opens the path it found).
 */
import { koffi, libc, sysRaw } from './libc.js';
import { errnoName } from './errors.js';
import { makeDev } from './devt.js';
import { STAT_SIZE, statIdentity } from './stat.js';

/** MAX_HANDLE_SZ (linux/exportfs.h): the most bytes a file handle has. */
export const MAX_HANDLE_SZ = 128;

/** A file handle as fdinfo prints it: its type and its opaque bytes. */
export interface FileHandle {
  type: number;
  bytes: Buffer;
}

/** What a handle opened: the path of the file as the opener's /proc/self/fd shows it, and its stat. */
export interface HandleTarget {
  path: string;
  dev: number;
  ino: number;
  mode: number;
}

/**
 * How one process's mounts are reached: its mountinfo text, and an open (O_RDONLY |
 * O_DIRECTORY: open_by_handle_at refuses an O_PATH mount fd) of a mount point given as
 * that mountinfo prints it (an fd, or -errno).
 */
export interface MountAccess {
  mountinfo: string;
  openMountPoint(path: string): number;
}

/** The kernel's internal dev_t of a superblock (s_dev, what fdinfo's `sdev:` prints): 12-bit major, 20-bit minor. */
export function kernelDev(sdev: number): { major: number; minor: number } {
  return { major: Math.floor(sdev / 2 ** 20), minor: sdev % 2 ** 20 };
}

/** The dev_t stat(2) reports for a superblock whose s_dev is `sdev`. */
export function statDevOfKernelDev(sdev: number): number {
  const { major, minor } = kernelDev(sdev);
  return makeDev(major, minor);
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The mount points of the superblock `major:minor`, those mounting its root first (they reach every file). */
export function mountPointsOf(mountinfo: string, major: number, minor: number): string[] {
  const wanted = `${major}:${minor}`;
  const whole: string[] = [];
  const parts: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    if (f[2] !== wanted || f[4] === undefined) continue;
    (f[3] === '/' ? whole : parts).push(unescape(f[4]));
  }
  return [...whole, ...parts];
}

/** How many of a superblock's mounts are tried (a container may bind-mount one file system many times). */
const MOUNTS_TRIED = 16;
const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;
const ESTALE = 116;
const linkBuf = Buffer.alloc(4097);
const statBuf = Buffer.alloc(STAT_SIZE);

/**
 * Whether the file system of `mountFd` opens file handles at all: its root's own handle
 * (name_to_handle_at without AT_HANDLE_FID, which asks for one that can be opened) opens
 * again. An overlayfs without nfs_export encodes fids for fdinfo but opens none: ESTALE.
 */
function opensHandles(mountFd: number): boolean {
  const fh = Buffer.alloc(8 + MAX_HANDLE_SZ);
  fh.writeUInt32LE(MAX_HANDLE_SZ, 0);
  const mountId = Buffer.alloc(4);
  const AT_EMPTY_PATH = 0x1000;
  const r = sysRaw(
    'name_to_handle_at',
    ['int', mountFd],
    ['void *', Buffer.from('\0')],
    ['void *', fh],
    ['void *', mountId],
    ['int', AT_EMPTY_PATH],
  );
  if (r < 0) return false;
  const size = fh.readUInt32LE(0);
  const fd = openByHandle(mountFd, { type: fh.readInt32LE(4), bytes: fh.subarray(8, 8 + size) });
  if (fd < 0) return false;
  libc.close(fd);
  return true;
}

/** open_by_handle_at(mount, handle, O_PATH): an fd of this process, or -errno. */
function openByHandle(mountFd: number, handle: FileHandle): number {
  // struct file_handle { u32 handle_bytes; int handle_type; unsigned char f_handle[]; }
  const fh = Buffer.alloc(8 + handle.bytes.length);
  fh.writeUInt32LE(handle.bytes.length, 0);
  fh.writeInt32LE(handle.type, 4);
  handle.bytes.copy(fh, 8);
  return sysRaw('open_by_handle_at', ['int', mountFd], ['void *', fh], ['int', O_PATH | O_CLOEXEC]);
}

/** Path and stat of an fd of this process (its /proc/self/fd link: the path from the mount it was opened on). */
function describe(fd: number): HandleTarget | { error: string } {
  const n = Number(libc.readlinkat(-100, `/proc/self/fd/${fd}`, linkBuf, linkBuf.length));
  if (n < 0) return { error: `readlink(/proc/self/fd/${fd}): ${errnoName(koffi.errno())}` };
  if (n >= linkBuf.length) return { error: 'its path is longer than PATH_MAX' };
  if (libc.fstat(fd, statBuf) === -1) return { error: `fstat: ${errnoName(koffi.errno())}` };
  return { path: linkBuf.toString('utf8', 0, n), ...statIdentity(statBuf) };
}

/**
 * Opens `handle` on a mount of the superblock `sdev` (fdinfo's encoding) among `mounts`,
 * and returns the path the opened file has there, or why it could not: `ESTALE` when the
 * file is gone (deleted, or its inode reused), no mount when the target sees none of that
 * file system. The bytes are the image's: bounded here, whatever the caller checked.
 */
export function openHandle(
  mounts: MountAccess,
  sdev: number,
  handle: FileHandle,
): HandleTarget | { error: string } {
  if (handle.bytes.length === 0 || handle.bytes.length > MAX_HANDLE_SZ)
    return { error: `a file handle of ${handle.bytes.length} bytes (1 to ${MAX_HANDLE_SZ})` };
  const { major, minor } = kernelDev(sdev);
  const points = mountPointsOf(mounts.mountinfo, major, minor).slice(0, MOUNTS_TRIED);
  if (points.length === 0)
    return { error: `no mount of device ${major}:${minor} in the target's mount namespace` };
  const failures: string[] = [];
  for (const point of points) {
    const mountFd = mounts.openMountPoint(point);
    if (mountFd < 0) {
      failures.push(`open(${point}): ${errnoName(-mountFd)}`);
      continue;
    }
    let fd: number;
    let opens = true;
    try {
      fd = openByHandle(mountFd, handle);
      if (fd === -ESTALE) opens = opensHandles(mountFd);
    } finally {
      libc.close(mountFd);
    }
    // Every mount of one superblock decodes a handle alike: a stale one is stale on all.
    if (fd === -ESTALE) {
      return {
        error: opens
          ? `open_by_handle_at(mount ${point}): ESTALE: the file is gone`
          : `open_by_handle_at(mount ${point}): ESTALE: its file system opens no file handles (an overlayfs without nfs_export=on, say)`,
      };
    }
    if (fd < 0) {
      failures.push(`open_by_handle_at(mount ${point}): ${errnoName(-fd)}`);
      continue;
    }
    try {
      const found = describe(fd);
      if ('error' in found) failures.push(found.error);
      else if (found.path.endsWith(' (deleted)')) return { error: `${found.path}: the file is deleted` };
      else return found;
    } finally {
      libc.close(fd);
    }
  }
  return { error: failures.join('; ') };
}
