/** Open flags in words, for tables and messages: `O_RDWR|O_APPEND|O_NONBLOCK`. */
import { O } from '../model.js';

/** Multi-bit flags come before their parts (O_SYNC includes O_DSYNC, O_TMPFILE O_DIRECTORY). */
const NAMED: readonly (readonly [number, string])[] = [
  [O.CREAT, 'O_CREAT'],
  [O.EXCL, 'O_EXCL'],
  [O.NOCTTY, 'O_NOCTTY'],
  [O.TRUNC, 'O_TRUNC'],
  [O.APPEND, 'O_APPEND'],
  [O.NONBLOCK, 'O_NONBLOCK'],
  [O.SYNC, 'O_SYNC'],
  [O.DSYNC, 'O_DSYNC'],
  [O.ASYNC, 'O_ASYNC'],
  [O.DIRECT, 'O_DIRECT'],
  [O.LARGEFILE, 'O_LARGEFILE'],
  [O.TMPFILE, 'O_TMPFILE'],
  [O.DIRECTORY, 'O_DIRECTORY'],
  [O.NOFOLLOW, 'O_NOFOLLOW'],
  [O.NOATIME, 'O_NOATIME'],
  [O.CLOEXEC, 'O_CLOEXEC'],
  [O.PATH, 'O_PATH'],
];

const ACCESS = ['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_ACCMODE'];

/**
 * `flags` as `|`-joined names; bits without a name are shown as one octal
 * number. With `accessMode` false the access mode is left out (for a subset
 * of flags, such as the offending ones in an error message).
 */
export function flagWords(flags: number, accessMode = false): string {
  const words: string[] = accessMode ? [ACCESS[flags & O.ACCMODE]!] : [];
  let rest = flags & ~O.ACCMODE;
  for (const [bits, name] of NAMED) {
    if ((rest & bits) === bits) {
      words.push(name);
      rest &= ~bits;
    }
  }
  if (rest !== 0) words.push(`0o${(rest >>> 0).toString(8)}`);
  return words.length === 0 ? '0' : words.join('|');
}
