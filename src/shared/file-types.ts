/**
 * The kinds of open file fdckpt knows, shared by the engine (agent/model.ts re-exports
 * them) and the API's validation. src/shared is the bottom layer: it imports nothing.
 */

/** Every kind of open file fdckpt knows. Numeric ids for the image live in image/. */
export const FILE_TYPES = [
  'regular',
  'directory',
  'fifo',
  'pipe',
  'socket',
  'eventfd',
  'eventpoll',
  'tty',
  'memfd',
  'signalfd',
  'timerfd',
  'inotify',
  'anon',
] as const;
export type FileType = (typeof FILE_TYPES)[number];

export function isFileType(value: string): value is FileType {
  return (FILE_TYPES as readonly string[]).includes(value);
}
