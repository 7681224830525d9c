/**
 * Capture's hot path: a whole fd table in one native call (native/fdckpt-table.c,
 * into a reused buffer): per fd its link, its fdinfo text, and through a pidfd_getfd
 * copy its fstat, F_GETFL and owner. Before, capture made six or seven koffi calls
 * per fd (readlinkat, openat, read, close, pidfd_getfd, fstat, fcntl), each costing
 * about as much as the kernel work it asked for (bench/RESULTS.md, issue 14).
 */
import { availableParallelism } from 'node:os';
import { libc } from './libc.js';
import { SyscallError } from './errors.js';
import { nativeLib } from './native-lib.js';
import { FileStat, i64, u64 } from './stat.js';
import { fdLimit } from './limits.js';
import type { FileOwner } from './process.js';

type FdTableFn = (
  fdDir: number,
  infoDir: number,
  pidfd: number,
  skip: Int32Array,
  nskip: number,
  flags: number,
  startFd: number,
  threads: number,
  maxFds: number,
  buf: Buffer,
  cap: number,
) => number;
let fdTable: FdTableFn | undefined;

function nativeFdTable(): FdTableFn {
  fdTable ??= nativeLib().func(
    'long fdckpt_fd_table(int fd_dir, int info_dir, int pidfd, const int32_t *skip, int32_t nskip, ' +
      'int32_t flags, int32_t start_fd, int32_t threads, int32_t max_fds, _Out_ uint8_t *buf, size_t cap)',
  ) as FdTableFn;
  return fdTable;
}

// The layout of native/fdckpt-table.c.
const HEAD = 104;
const MAX_RECORD = HEAD + 4096 + 16384;
const SEGMENT_TABLE = 16 * 8;
const KEEP_COPIES = 1;
const INFO_TOO_LONG = -1000000;
const COPY_CLOSED = -1000001;
const COPY_SKIPPED = -1000002;
const F_OWNER_TID = 0;
const F_OWNER_PGRP = 2;
/** The smallest buffer the call accepts: the segment table and one largest record (PATH_MAX link, 16 KiB fdinfo). */
export const TABLE_MIN_BUFFER = SEGMENT_TABLE + MAX_RECORD;
// About 25k fds of files with short paths per share and call; larger tables take more calls.
const tableBuf = Buffer.allocUnsafe(8 << 20);
/** Both cores: the kernel's per-fd work scales on a second one (bench/RESULTS.md). */
const THREADS = Math.min(availableParallelism(), 8);

/** One fd as the native read saw it. */
export interface TableEntry {
  fd: number;
  link: string;
  /**
   * The fdinfo text: with `common`, only the lines after pos, flags, mnt_id and ino
   * (empty for most files); else the whole text. Undefined when it is longer than one
   * record holds (read it apart).
   */
  fdinfo: string | undefined;
  /** fdinfo's common lines, parsed natively, when it started with them. */
  common?: { pos: number; flags: number; mntId: number; ino: number };
  /** The open copy of the fd in this process (the caller closes it), or -1 when none is left open. */
  copy: number;
  /** True when the fd is on a mount the caller said to skip: nothing but /proc was read. */
  skipped: boolean;
  /** Present when a copy was taken. */
  stat?: FileStat;
  /** F_GETFL of the copy (-1 when no copy was taken). */
  statusFlags: number;
  /** The file's owner for SIGIO (null: none, or an O_PATH file), when a copy was taken. */
  owner?: FileOwner | null;
  /** F_GETSIG, when the file has an owner. */
  signal: number;
  /** What failed reading the fd itself (link, fdinfo, copy, fstat), as the calls in order would have thrown. */
  error?: SyscallError;
  /** What failed asking for its owner (F_GETOWN_EX, F_GETSIG): only a file recorded for the first time cares. */
  ownerError?: SyscallError;
}

/** What to read through the native table call. */
export interface TableRead {
  pid: number;
  /** Open /proc/PID/fd and /proc/PID/fdinfo directories. */
  fdDir: number;
  infoDir: number;
  pidfd: number;
  /** mnt_ids whose files get no copy (FUSE). */
  skipMounts: readonly number[];
  /** Leave every copy open (the caller pins them), not only those a type reads more from. */
  keepCopies: boolean;
}

/**
 * Most fds one native call reads: the copies it leaves open stay well below this
 * process's RLIMIT_NOFILE (a quarter of it, at most 4096: a table of 19k pipes would
 * otherwise need 19k copies at once).
 */
export function fdsPerCall(): number {
  perCall ??= Math.max(64, Math.min(4096, Math.floor(fdLimit() / 4)));
  return perCall;
}
let perCall: number | undefined;

/**
 * Calls `each` for every fd of one process, in fd order, a call's worth (fdsPerCall())
 * at a time: `each` owns the entry's open copy (closes or keeps it, and sets `copy` to -1
 * when it did either). When the listing fails, throws a SyscallError of getdents64; when
 * `each` throws, the copies of the call's entries not handed over yet are closed first.
 * `threads` (default: the cores, up to 8) is how many shares a call reads at once.
 */
export function readFdTable(
  r: TableRead,
  each: (e: TableEntry) => void,
  buf: Buffer = tableBuf,
  threads = THREADS,
  perCall = fdsPerCall(),
): void {
  const call = nativeFdTable();
  const skip = Int32Array.from(r.skipMounts);
  const shares = Math.max(1, Math.min(threads, Math.floor((buf.length - SEGMENT_TABLE) / MAX_RECORD)));
  const flags = r.keepCopies ? KEEP_COPIES : 0;
  for (let start = 0; ;) {
    const n = Number(
      call(r.fdDir, r.infoDir, r.pidfd, skip, skip.length, flags, start, shares, perCall, buf, buf.length),
    );
    if (n === -22) throw new Error(`fd table buffer of ${buf.length} bytes: below ${TABLE_MIN_BUFFER}`);
    if (n < 0) throw new SyscallError('getdents64', -n, `/proc/${r.pid}/fd`);
    // Shares in fd order; after the first that ran out of room, the rest is read again.
    const batch: TableEntry[] = [];
    let next = -1;
    for (let t = 0; t < n; t++) {
      const at = u64(buf, 16 * t);
      const end = at + buf.readUInt32LE(16 * t + 8);
      if (next >= 0) closeRecordCopies(buf, at, end);
      else decode(r.pid, buf, at, end, batch);
      if (next < 0) next = buf.readInt32LE(16 * t + 12);
    }
    try {
      for (const e of batch) each(e);
    } finally {
      closeCopies(batch);
    }
    if (next < 0) return;
    start = next;
  }
}

/** Every fd of one process at once (tests; capture streams with readFdTable): the caller owns the open copies. */
export function readWholeFdTable(
  r: TableRead,
  buf?: Buffer,
  threads?: number,
  perCall?: number,
): TableEntry[] {
  const out: TableEntry[] = [];
  try {
    readFdTable(
      r,
      (e) => {
        out.push({ ...e });
        e.copy = -1;
      },
      buf,
      threads,
      perCall,
    );
  } catch (err) {
    closeCopies(out);
    throw err;
  }
  return out;
}

/** Closes the copies in records [at, end) that will be read again. */
function closeRecordCopies(buf: Buffer, at: number, end: number): void {
  while (at < end) {
    const copy = buf.readInt32LE(at + 12);
    if (copy >= 0) libc.close(copy);
    at += HEAD + Math.max(0, buf.readInt32LE(at + 4)) + Math.max(0, buf.readInt32LE(at + 8));
  }
}

/** Closes the copies of entries the caller will not use. */
export function closeCopies(entries: readonly TableEntry[], from = 0): void {
  for (let i = from; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.copy >= 0) libc.close(e.copy);
    e.copy = -1;
  }
}

/** Decodes the records in [at, end) into `out`. */
function decode(pid: number, buf: Buffer, at: number, end: number, out: TableEntry[]): void {
  while (at < end) {
    const fd = buf.readInt32LE(at);
    const linkLen = buf.readInt32LE(at + 4);
    const infoLen = buf.readInt32LE(at + 8);
    const copy = buf.readInt32LE(at + 12);
    const statErr = buf.readInt32LE(at + 16);
    const getfl = buf.readInt32LE(at + 20);
    const ownType = buf.readInt32LE(at + 24);
    const ownPid = buf.readInt32LE(at + 28);
    const ownSig = buf.readInt32LE(at + 32);
    let p = at + HEAD;
    const link = linkLen > 0 ? buf.toString('utf8', p, p + linkLen) : '';
    if (linkLen > 0) p += linkLen;
    const fdinfo = infoLen >= 0 ? buf.toString('latin1', p, p + infoLen) : undefined;
    if (infoLen > 0) p += infoLen;
    const e: TableEntry = {
      fd,
      link,
      fdinfo,
      copy: copy >= 0 ? copy : -1,
      skipped: copy === COPY_SKIPPED,
      statusFlags: getfl,
      signal: 0,
    };
    if (buf.readInt32LE(at + 100) === 1) {
      e.common = {
        pos: i64(buf, at + 80),
        flags: buf.readUInt32LE(at + 96),
        mntId: buf.readInt32LE(at + 44),
        ino: i64(buf, at + 88),
      };
    }
    // Named only when something failed: most fds need no message.
    const where = (): string => `/proc/${pid}/fd/${fd}`;
    if (linkLen < 0) e.error = new SyscallError('readlinkat', -linkLen, where());
    else if (infoLen < 0 && infoLen !== INFO_TOO_LONG)
      e.error = new SyscallError('openat', -infoLen, `/proc/${pid}/fdinfo/${fd}`);
    else if (copy < 0 && copy !== COPY_CLOSED && copy !== COPY_SKIPPED)
      e.error = new SyscallError('pidfd_getfd', -copy, `pid ${pid}, fd ${fd}`);
    else if (statErr < 0) e.error = new SyscallError('fstat', -statErr, `copy of ${where()}`);
    if (!e.error && !e.skipped) {
      e.stat = new FileStat(
        u64(buf, at + 48),
        u64(buf, at + 56),
        buf.readUInt32LE(at + 36),
        buf.readUInt32LE(at + 40),
        u64(buf, at + 64),
        i64(buf, at + 72),
      );
      if (getfl < 0) e.ownerError = new SyscallError('fcntl', -getfl, `F_GETFL, copy of ${where()}`);
      else if (ownType < 0)
        e.ownerError = new SyscallError('fcntl', -ownType, `F_GETOWN_EX, copy of ${where()}`);
      else if (ownPid === 0) e.owner = null;
      else {
        const kind = ownType === F_OWNER_TID ? 'tid' : ownType === F_OWNER_PGRP ? 'pgrp' : 'pid';
        e.owner = { kind, id: ownPid };
        if (ownSig < 0) e.ownerError = new SyscallError('fcntl', -ownSig, `F_GETSIG, copy of ${where()}`);
        else e.signal = ownSig;
      }
    }
    out.push(e);
    at = p;
  }
}
