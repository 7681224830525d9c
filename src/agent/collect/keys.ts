/**
 * Keys under which an object can be recognised from another process's fd
 * table by its /proc link and stat alone, without any syscall on the holder.
 * pipefs and sockfs inode numbers are unique on the host, so `pipe:[N]` and
 * `socket:[N]` are keys as they are; files with a path are keyed by
 * device and inode (paths differ between mount namespaces); pty ends by the
 * devpts instance and index. Anonymous-inode files (eventfd, epoll, ...) all
 * share one inode: they can only be told apart with kcmp.
 */

/** Key of a file with a path (regular, directory, FIFO, device, memfd). */
export function inodeKey(dev: number | bigint | string, ino: number | bigint | string): string {
  return `inode:${dev}:${ino}`;
}

/** Key of a pty pair: the devpts instance (its st_dev) and the pty index. */
export function ptyKey(devptsDev: number | bigint, index: number): string {
  return `pty:${devptsDev}:${index}`;
}

/** The inode in `pipe:[123]` / `socket:[123]`, or -1. */
export function bracketIno(link: string): number {
  const open = link.indexOf(':[');
  return open > 0 && link.endsWith(']') ? Number(link.slice(open + 2, -1)) : -1;
}

/** Major number of a dev_t as the kernel encodes it for user space (glibc's gnu_dev_major). */
export function devMajor(dev: number): number {
  return ((dev >>> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
}
/** Minor number of a dev_t (glibc's gnu_dev_minor). */
export function devMinor(dev: number): number {
  return (dev & 0xff) | ((dev >>> 12) & ~0xff);
}

/** dev_t from major and minor (glibc's gnu_dev_makedev), as /proc/PID/maps prints them. */
export function makeDev(major: number, minor: number): number {
  return (minor & 0xff) + ((major & 0xfff) << 8) + (minor & ~0xff) * 2 ** 12 + (major & ~0xfff) * 2 ** 32;
}

/** The Unix98 pty slave major numbers are 136..143: index = (major-136)*256 + minor. */
export function ptySlaveIndex(rdev: number): number {
  const major = devMajor(rdev);
  return major >= 136 && major <= 143 ? (major - 136) * 256 + devMinor(rdev) : -1;
}
