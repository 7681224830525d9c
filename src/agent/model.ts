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

/**
 * Each file type's own state, declared by its module (filetypes/<type>.ts adds its row
 * to this interface with `declare module '../model.js'`), so that a new type's state
 * lives with the code that captures and restores it. Key: the type; value: its data,
 * whose `type` is the key.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface FileDataByType {}

/** Type-specific state, a discriminated union keyed on `type`. */
export type FileData = FileDataByType[keyof FileDataByType];

/**
 * Compile-time checks of the merged rows: one per FileType, none else, and each row's
 * `type` is its key (a row that names another type would break the union's narrowing).
 */
type Exactly<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
export const FILE_DATA_ROWS_MATCH_FILE_TYPES: Exactly<keyof FileDataByType, FileType> = true;
export const FILE_DATA_ROWS_NAME_THEIR_TYPE: Exactly<
  { [K in keyof FileDataByType]: FileDataByType[K]['type'] },
  { [K in keyof FileDataByType]: K }
> = true;

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
