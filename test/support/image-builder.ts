/**
 * Hand-built images for the reader's rejection tests: records are written
 * field by field here, independently of the writer, and sealed with a
 * correct checksum, so each test breaks exactly one rule.
 */
import { createHash } from 'node:crypto';
import { ByteWriter } from '../../src/agent/image/bytes.js';
import { FORMAT_VERSION, MAGIC, RECORD, type RecordKind } from '../../src/agent/image/format.js';
import { O } from '../../src/agent/model.js';

/** One record: type id, payload length, payload. `type` may be any number, to test unknown ids. */
export function rec(kind: RecordKind | number, fill: (w: ByteWriter) => void): Buffer {
  const w = new ByteWriter();
  fill(w);
  const payload = Buffer.from(w.bytes());
  const head = Buffer.alloc(8);
  head.writeUInt32LE(typeof kind === 'number' ? kind : RECORD[kind], 0);
  head.writeUInt32LE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

/** An image header as format `version` lays it out (2 and later: not bound to a Checkpoint). */
export function headerRec(version = FORMAT_VERSION): Buffer {
  return rec('header', (w) => {
    w.str('node', 'n');
    w.str('source', 's');
    w.i64n('time', 1);
    w.str('kernel', 'k');
    w.str('tool', 't');
    if (version >= 2) w.bool('bound', false);
  });
}

export interface FileFields {
  objref: number;
  typeId: number;
  flags: number;
  ignored: number;
  /** The type data; defaults to a regular file's size. */
  data: (w: ByteWriter) => void;
}

export function fileRec(f: Partial<FileFields> = {}): Buffer {
  return rec('file', (w) => {
    w.i32('objref', f.objref ?? 1);
    w.u16('type', f.typeId ?? 1);
    w.u32('flags', f.flags ?? O.RDWR);
    w.u64n('pos', 0);
    w.i32('mntId', 1);
    w.u64n('dev', 1);
    w.u64n('ino', 1);
    w.u32('mode', 0o100644);
    w.u8('ignored', f.ignored ?? 0);
    (f.data ?? ((d) => d.u64n('size', 0)))(w);
  });
}

export function nameRec(path = '/f'): Buffer {
  return rec('name', (w) => w.str('path', path));
}

export function tableRec(objref: number, nfds: number): Buffer {
  return rec('table', (w) => {
    w.i32('objref', objref);
    w.u32('nfds', nfds);
  });
}

export function fdRec(fd: number, file: number, cloexec = 0): Buffer {
  return rec('fd', (w) => {
    w.i32('fd', fd);
    w.i32('file', file);
    w.u8('cloexec', cloexec);
  });
}

/** A process record as format `version` lays it out (3 and later: with an exe). */
export function processRec(pid: number, table: number, version = FORMAT_VERSION, exe = ''): Buffer {
  return rec('process', (w) => {
    w.i32('pid', pid);
    w.i32('tgid', pid);
    w.i32('table', table);
    w.str('comm', 'c');
    w.str('cwd', '/');
    if (version >= 3) w.str('exe', exe);
    w.u32('argc', 0);
  });
}

export function preamble(version = FORMAT_VERSION, magic: Buffer = MAGIC): Buffer {
  const v = Buffer.alloc(4);
  v.writeUInt32LE(version, 0);
  return Buffer.concat([magic, v]);
}

/** The trailer for `body` (preamble + records): a correct SHA-256 unless `digest` is given. */
export function trailer(body: Buffer, digest?: Buffer): Buffer {
  const d = digest ?? createHash('sha256').update(body).digest();
  return rec('trailer', (w) => w.raw(d));
}

/** A complete image: preamble, the records, and a correct trailer. */
export function image(records: Buffer[], pre: Buffer = preamble()): Buffer {
  const body = Buffer.concat([pre, ...records]);
  return Buffer.concat([body, trailer(body)]);
}

/** The records of a small valid image: header, one file, one table with fd 0, one process. */
export function validRecords(version = FORMAT_VERSION): Buffer[] {
  return [headerRec(version), fileRec(), nameRec(), tableRec(2, 1), fdRec(0, 1), processRec(10, 2, version)];
}

/** Byte offset of record `index` (0-based) within image(records). */
export function offsetOf(records: Buffer[], index: number): number {
  return 12 + records.slice(0, index).reduce((n, r) => n + r.length, 0);
}
