/**
 * The registry of file types: adding a type is one module and one row here.
 * Typed as a Record over FileType, so a missing type fails to compile.
 */
import type { FileType } from '../model.js';
import type { FileStat } from '../linux/stat.js';
import type { Fdinfo } from '../procfs/fdinfo.js';
import type { FileTypeOps } from './types.js';
import { DETECT_TIERS } from './types.js';
import { regular } from './regular.js';
import { directory } from './directory.js';
import { fifo } from './fifo.js';
import { pipe } from './pipe.js';
import { socket } from './socket.js';
import { eventfd } from './eventfd.js';
import { eventpoll } from './eventpoll.js';
import { tty } from './tty.js';
import { memfd } from './memfd.js';
import { signalfd } from './signalfd.js';
import { timerfd } from './timerfd.js';
import { inotify } from './inotify.js';
import { anon } from './anon.js';

export const fileTypes = {
  regular,
  directory,
  fifo,
  pipe,
  socket,
  eventfd,
  eventpoll,
  tty,
  memfd,
  signalfd,
  timerfd,
  inotify,
  anon,
} satisfies { [T in FileType]: FileTypeOps<T> };

/**
 * Detection order, derived from each type's tier (specific before general: tty and memfd
 * before regular, anon last); the sort is stable, so within a tier it follows the
 * registry. Every registered type is in it.
 */
export const DETECTION_ORDER: readonly FileTypeOps<FileType>[] = (
  Object.values(fileTypes) as FileTypeOps<FileType>[]
).sort((a, b) => DETECT_TIERS.indexOf(a.detectTier) - DETECT_TIERS.indexOf(b.detectTier));

/** The ops of the first type whose detect() accepts this fd. */
export function detectType(link: string, stat: FileStat, fdinfo: Fdinfo): FileTypeOps<FileType> {
  for (const ops of DETECTION_ORDER) if (ops.detect(link, stat, fdinfo)) return ops;
  return anon;
}

/** The ops of a type, for code that holds a FileRecord. */
export function opsOf<T extends FileType>(type: T): FileTypeOps<T> {
  return fileTypes[type] as unknown as FileTypeOps<T>;
}

/** Whether replay can recreate files of this type: its module plans their restore. */
export function isRestorable(type: FileType): boolean {
  return opsOf(type).restore !== undefined;
}
