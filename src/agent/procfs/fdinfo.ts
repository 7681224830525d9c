/**
 * Parser for /proc/PID/fdinfo/FD. The first lines are common to every file
 * (pos, flags in octal, mnt_id, ino); the rest are the type's own lines
 * (`eventfd-count:`, `tfd:`, `tty-index:`, `inotify wd:`, `lock:`, ...).
 */
export interface Fdinfo {
  pos: number;
  /** Raw flags, octal in the file, including O_CLOEXEC for this fd. */
  flags: number;
  mntId: number;
  /** Inode number (kernel ≥ 5.14), or -1 when the kernel does not print it. */
  ino: number;
  /** The remaining "key: value" lines in order, for type modules to read. */
  extra: string[];
  /** `lock:` lines: the fd holds a POSIX/flock/OFD lock or lease. */
  locks: string[];
}

/** The lines every fdinfo starts with, already parsed (native/fdckpt-table.c does it). */
export interface FdinfoCommon {
  pos: number;
  flags: number;
  mntId: number;
  ino: number;
}

/** The Fdinfo of a file whose common lines are parsed, from the lines after them. */
export function fdinfoFrom(common: FdinfoCommon, rest: string): Fdinfo {
  const extra: string[] = [];
  const locks: string[] = [];
  if (rest !== '') splitLines(rest, extra, locks);
  return { pos: common.pos, flags: common.flags, mntId: common.mntId, ino: common.ino, extra, locks };
}

/** The type's own lines of an fdinfo: `lock:` values apart, the others as they are. */
function splitLines(text: string, extra: string[], locks: string[]): void {
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('lock:')) locks.push(line.slice(5).trim());
    else extra.push(line);
  }
}

export function parseFdinfo(text: string, where: string): Fdinfo {
  let pos = -1;
  let flags = -1;
  let mntId = -1;
  let ino = -1;
  const extra: string[] = [];
  const locks: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    const key = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).trim();
    switch (key) {
      case 'pos':
        pos = Number(value);
        break;
      case 'flags':
        flags = parseInt(value, 8);
        break;
      case 'mnt_id':
        mntId = Number(value);
        break;
      case 'ino':
        ino = Number(value);
        break;
      case 'lock':
        locks.push(value);
        break;
      default:
        extra.push(line);
    }
  }
  if (pos < 0 || Number.isNaN(flags) || flags < 0) {
    throw new Error(`${where}: unexpected fdinfo (no pos/flags): ${JSON.stringify(text.slice(0, 80))}`);
  }
  return { pos, flags, mntId, ino, extra, locks };
}

/** Value of the first `key:` line among the extra lines, trimmed, or undefined. */
export function fdinfoField(info: Fdinfo, key: string): string | undefined {
  const prefix = `${key}:`;
  for (const line of info.extra) if (line.startsWith(prefix)) return line.slice(prefix.length).trim();
  return undefined;
}
