/**
 * The in-memory model of a checkpoint: what capture produces, what the image
 * stores, what replay consumes. It follows the seed's file-table design: a
 * process points at a file table (shared by CLONE_FILES tasks), a table lists
 * fds, each fd points at an open file by objref, and an open file shared by
 * several fds or processes is stored once.
 *
 * Objrefs are positive integers, unique across all objects (tables and files)
 * of one checkpoint, assigned in order of first occurrence.
 */

export { FILE_TYPES, isFileType, type FileType } from '../shared/file-types.js';
import type { FileType } from '../shared/file-types.js';

/** One fd of a file table: its number, the open file it refers to, and its close-on-exec bit. */
export interface FdRecord {
  fd: number;
  /** objref of the FileRecord */
  file: number;
  cloexec: boolean;
}

/** A file table (struct files_struct), shared by tasks created with CLONE_FILES. */
export interface FileTableRecord {
  objref: number;
  /** Sorted by fd number. */
  fds: FdRecord[];
}

/** One task (a process, or a thread whose table matters) that was captured. */
export interface ProcessRecord {
  pid: number;
  /** Thread-group id; equals pid for a process leader. */
  tgid: number;
  comm: string;
  /** /proc/PID/cmdline as read: a program may have rewritten it (see replay/command.ts). */
  argv: string[];
  cwd: string;
  /** /proc/PID/exe: the executable that was exec'd (absent when unreadable). */
  exe?: string;
  /** objref of the FileTableRecord. */
  table: number;
}

/**
 * Bytes left in an image file instead of memory (a large memfd's contents): where they
 * are, and their SHA-256 as read while the reader checked the image's checksum. Whoever
 * reads them again (replay, a writer) checks that hash: the file may have changed since.
 */
export interface StoredBytes {
  readonly image: string;
  /** Byte offset in the image file. */
  readonly offset: number;
  readonly length: number;
  sha256: Buffer;
}

/** Type-specific state, a discriminated union keyed on `type`. */
export type FileData =
  | { type: 'regular'; size: number }
  | { type: 'directory' }
  | { type: 'fifo' }
  | {
      type: 'pipe';
      /** pipe inode: both ends of one pipe share it. */
      pipeIno: number;
      end: 'read' | 'write';
      /** Bytes waiting in the pipe when captured. */
      bufferedBytes: number;
      /** The buffered bytes themselves (only recorded from a read end, via tee). */
      buffered?: Buffer;
    }
  | {
      type: 'socket';
      family: number;
      sockType: number;
      protocol: number;
      /** 'listen', 'connected', 'unconnected', ... as far as we can tell. */
      state: string;
      sockIno: number;
      /** inode of the connected peer, for unix sockets (leak detection). */
      peerIno?: number;
      localAddress?: string;
      /** For a listening socket: what replay needs to listen again. */
      listen?: ListenState;
    }
  | { type: 'eventfd'; count: bigint; semaphore: boolean }
  | { type: 'eventpoll'; targets: EpollTarget[] }
  | { type: 'tty'; index: number; master: boolean }
  | {
      type: 'memfd';
      name: string;
      size: number;
      /** F_SEAL_* bits (F_GET_SEALS). */
      seals: number;
      /**
       * The whole contents; absent when the memfd was larger than capture copies.
       * Read from an image file, large contents stay there (StoredBytes).
       */
      contents?: Buffer | StoredBytes;
    }
  | { type: 'signalfd'; sigmask: bigint }
  | {
      type: 'timerfd';
      clockid: number;
      ticks: bigint;
      settimeFlags: number;
      valueNs: bigint;
      intervalNs: bigint;
    }
  | { type: 'inotify'; watches: InotifyWatch[] }
  | { type: 'anon'; name: string };

/** A listening socket's bound address, backlog and the options bind and accepted sockets depend on. */
export interface ListenState {
  /** The bound address as getsockname(2) returned it: a raw struct sockaddr. */
  address: Buffer;
  /** The listen(2) backlog (sock_diag: sk_max_ack_backlog). */
  backlog: number;
  reuseAddr: boolean;
  reusePort: boolean;
  keepAlive: boolean;
  /** IPV6_V6ONLY, AF_INET6 only. */
  v6Only: boolean;
  /** TCP_NODELAY, TCP only. */
  noDelay: boolean;
}

/** One epoll registration, as /proc/PID/fdinfo of the epoll fd shows it (`tfd:` lines). */
export interface EpollTarget {
  /** fd number of the target in the epoll owner's table at capture time. */
  tfd: number;
  events: number;
  data: bigint;
  /** inode of the target file, to find it again. */
  ino: number;
  /** objref of the target file, when it was found among the captured files. */
  file?: number;
}

export interface InotifyWatch {
  wd: number;
  ino: number;
  /** The superblock's s_dev as fdinfo prints it (12-bit major above a 20-bit minor), not a stat st_dev. */
  sdev: number;
  mask: number;
  ignoredMask: number;
  /** The watched file's handle (fdinfo `f_handle:`), absent in images before version 4 and on file systems without one. */
  handle?: { type: number; bytes: Buffer };
}

/** Why a file is stored but must not be restored (the seed's IGNORE). */
export interface IgnoreMark {
  reason: 'type' | 'fd';
}

/** One open file (struct file), stored once however many fds share it. */
export interface FileRecord {
  objref: number;
  type: FileType;
  /** Open flags as fdinfo `flags` shows them, without O_CLOEXEC (that is per fd). */
  flags: number;
  pos: number;
  /** What /proc/PID/fd/N points at: a path, or `pipe:[123]`, `anon_inode:[eventfd]`, ... */
  path: string;
  mntId: number;
  dev: number;
  ino: number;
  /** st_mode of the file. */
  mode: number;
  data: FileData;
  /** Present when the caller asked to record this file without restoring it. */
  ignored?: IgnoreMark;
  /** Who gets SIGIO/SIGURG for it (F_SETOWN_EX) and which signal (F_SETSIG, 0: SIGIO). */
  owner?: FileOwnerRecord;
}

/** An open file's owner for SIGIO/SIGURG: a process, a thread or a process group. */
export interface FileOwnerRecord {
  kind: 'pid' | 'tid' | 'pgrp';
  id: number;
  signal: number;
}

/** Facts about where and when the checkpoint was taken. */
export interface ImageHeader {
  node: string;
  /** Free-form label of the captured unit: a pod `ns/name`, a cgroup path, or pids. */
  source: string;
  /** Milliseconds since the epoch. */
  time: number;
  kernel: string;
  tool: string;
  /** The Checkpoint this image was captured for (absent for CLI captures and version 1 images). */
  binding?: ImageBinding;
}

/**
 * Who an image belongs to: the Checkpoint (namespace, name, uid: the API
 * server's, never reused) and the captured pod's uid. An agent replays or
 * serves an image only for the Checkpoint it names.
 */
export interface ImageBinding {
  namespace: string;
  name: string;
  uid: string;
  podUid: string;
}

/** A whole checkpoint: the unit capture produces and the image stores. */
export interface Checkpoint {
  header: ImageHeader;
  processes: ProcessRecord[];
  tables: FileTableRecord[];
  files: FileRecord[];
}

/** Open flags (x86-64 values, octal as in fcntl.h). */
export const O = {
  ACCMODE: 0o3,
  RDONLY: 0o0,
  WRONLY: 0o1,
  RDWR: 0o2,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DSYNC: 0o10000,
  ASYNC: 0o20000,
  DIRECT: 0o40000,
  LARGEFILE: 0o100000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  NOATIME: 0o1000000,
  CLOEXEC: 0o2000000,
  SYNC: 0o4010000,
  PATH: 0o10000000,
  TMPFILE: 0o20200000,
} as const;

/** Flags that only make sense at creation; a saved file with any of them is malformed. */
export const CREATION_ONLY_FLAGS = O.CREAT | O.EXCL | O.NOCTTY | O.TRUNC;

/** Longest path the kernel accepts (PATH_MAX, including the NUL). */
export const PATH_MAX = 4096;

/** Most fds one file table may hold in an image (the kernel's default fs.nr_open). */
export const NFDS_MAX = 1 << 20;
