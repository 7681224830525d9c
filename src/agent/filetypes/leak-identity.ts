/**
 * The leak identities most types share (filetypes/types.ts, LeakIdentity): a file with a
 * path by its device and inode (paths differ between mount namespaces), a file on an
 * anonymous inode by the link every such file shows.
 */
import type { FileRecord } from '../model.js';
import { inodeKey } from '../procfs/keys.js';
import type { LeakIdentity } from './types.js';

/** A file with a path: its device and inode; one without: nothing outside can name it. */
export function byInode(file: FileRecord): LeakIdentity {
  return file.path.startsWith('/') ? { selfKey: inodeKey(file.dev, file.ino) } : {};
}

/** eventfd, epoll, signalfd, timerfd, inotify: every such file shows the same link. */
export function byAnonLink(file: FileRecord): LeakIdentity {
  return file.path.startsWith('/') ? byInode(file) : { anonLink: file.path };
}
