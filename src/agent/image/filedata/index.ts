/**
 * The registry of file-data codecs, by model type and by numeric image id.
 * Typed with `satisfies` so that a FileType without a codec fails to compile.
 */
import type { FileType } from '../../model.js';
import { anon } from './anon.js';
import { directory } from './directory.js';
import { eventfd } from './eventfd.js';
import { eventpoll } from './eventpoll.js';
import { fifo } from './fifo.js';
import { inotify } from './inotify.js';
import { memfd } from './memfd.js';
import { pipe } from './pipe.js';
import { regular } from './regular.js';
import { signalfd } from './signalfd.js';
import { socket } from './socket.js';
import { timerfd } from './timerfd.js';
import { tty } from './tty.js';
import type { FileDataCodec } from './types.js';

export const CODECS = {
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
} satisfies { [T in FileType]: FileDataCodec<T> };

/** The codec of one model type (widened: callers pair it with data of that type). */
export function codecOf(type: FileType): FileDataCodec<FileType> {
  return CODECS[type] as FileDataCodec<FileType>;
}

const byId = new Map<number, FileDataCodec<FileType>>();
for (const codec of Object.values(CODECS) as FileDataCodec<FileType>[]) {
  if (byId.has(codec.id)) throw new Error(`file type id ${codec.id} used twice`);
  byId.set(codec.id, codec);
}

/** The codec for a numeric type id read from an image, or undefined when unknown. */
export function codecById(id: number): FileDataCodec<FileType> | undefined {
  return byId.get(id);
}
