/**
 * Keys under which an object can be recognised from another process's fd
 * table by its /proc link and stat alone, without any syscall on the holder.
 * pipefs and sockfs inode numbers are unique on the host, so `pipe:[N]` and
 * `socket:[N]` are keys as they are; files with a path are keyed by
 * device and inode (paths differ between mount namespaces); pty ends by the
 * devpts instance and index. Anonymous-inode files (eventfd, epoll, ...) all
 * share one inode: they can only be told apart with kcmp.
 */
import { devMajor, devMinor } from '../linux/devt.js';

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

/** The Unix98 pty slave major numbers are 136..143: index = (major-136)*256 + minor. */
export function ptySlaveIndex(rdev: number): number {
  const major = devMajor(rdev);
  return major >= 136 && major <= 143 ? (major - 136) * 256 + devMinor(rdev) : -1;
}
