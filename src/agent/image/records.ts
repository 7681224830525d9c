/**
 * One record's payload into its values (parse), and validated values into the
 * Checkpoint (CheckpointBuilder). The two are apart so that a reader that decodes only
 * part of an image (select.ts) can parse a record early, or late, or not at all, and
 * still feed what it keeps through the same rules in stream order.
 */
import type {
  Checkpoint,
  FdRecord,
  FileRecord,
  FileTableRecord,
  ImageHeader,
  ProcessRecord,
} from '../model.js';
import { ByteReader, type PayloadSpan } from './bytes.js';
import { ImageFormatError, RecordViolation, type ImageLocation } from './errors.js';
import { codecById } from './filedata/index.js';
import { BINDING_VERSION, EXE_AND_OWNER_VERSION, OWNER_KINDS } from './format.js';
import { ImageRules } from './rules.js';

const IGNORE_REASONS = [undefined, 'type', 'fd'] as const;

/** An owner record's fields as stored (the kind a byte, checked by the rules). */
export interface OwnerFields {
  kind: number;
  id: number;
  signal: number;
}

/** What each record kind parses to. A file's path is '' until its name record. */
export interface RecordValues {
  header: ImageHeader;
  file: FileRecord;
  name: string;
  owner: OwnerFields;
  table: { objref: number; nfds: number };
  fd: FdRecord;
  process: ProcessRecord;
}
export type DataKind = keyof RecordValues;

/** A record's payload as its values; a malformed field is a RecordViolation (to be located). */
export function parseRecord<K extends DataKind>(
  kind: K,
  payload: Buffer | PayloadSpan,
  version: number,
): RecordValues[K] {
  const r = new ByteReader(payload);
  let value: RecordValues[DataKind];
  switch (kind) {
    case 'header':
      value = parseHeader(r, version);
      break;
    case 'file':
      value = parseFile(r, version);
      break;
    case 'name':
      value = r.str('path');
      break;
    case 'owner':
      value = { kind: r.u8('kind'), id: r.i32('id'), signal: r.i32('signal') };
      break;
    case 'table':
      value = { objref: r.i32('objref'), nfds: r.u32('nfds') };
      break;
    case 'fd':
      value = { fd: r.i32('fd'), file: r.i32('file'), cloexec: r.bool('cloexec') };
      break;
    default:
      value = parseProcess(r, version);
  }
  r.end();
  return value as RecordValues[K];
}

/** What to throw for `err` raised by the record at `where`: a RecordViolation located there. */
export function locatedError(err: unknown, where: ImageLocation): unknown {
  return err instanceof RecordViolation ? new ImageFormatError(where, err.message) : err;
}

/** fn(), its RecordViolation an ImageFormatError at `where`. */
export function located<T>(where: ImageLocation, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw locatedError(err, where);
  }
}

function parseHeader(r: ByteReader, version: number): ImageHeader {
  const node = r.str('node');
  const source = r.str('source');
  const time = r.i64n('time');
  const kernel = r.str('kernel');
  const tool = r.str('tool');
  // Version 2: the Checkpoint the image belongs to (optional: CLI captures have none).
  const binding =
    version >= BINDING_VERSION && r.bool('bound')
      ? { namespace: r.str('namespace'), name: r.str('name'), uid: r.str('uid'), podUid: r.str('podUid') }
      : undefined;
  return { node, source, time, kernel, tool, ...(binding ? { binding } : {}) };
}

function parseFile(r: ByteReader, version: number): FileRecord {
  const objref = r.i32('objref');
  const typeId = r.u16('type');
  const codec = codecById(typeId);
  if (codec === undefined) throw new RecordViolation(`unknown file type id ${typeId}`);
  const flags = r.u32('flags');
  const pos = r.u64n('pos');
  const mntId = r.i32('mntId');
  const dev = r.u64n('dev');
  const ino = r.u64n('ino');
  const mode = r.u32('mode');
  const mark = r.u8('ignored');
  if (mark >= IGNORE_REASONS.length) throw new RecordViolation(`field ignored: invalid ignore mark ${mark}`);
  const data = codec.decode(r, version);
  const rec: FileRecord = { objref, type: codec.type, flags, pos, path: '', mntId, dev, ino, mode, data };
  const reason = IGNORE_REASONS[mark];
  if (reason !== undefined) rec.ignored = { reason };
  return rec;
}

function parseProcess(r: ByteReader, version: number): ProcessRecord {
  const pid = r.i32('pid');
  const tgid = r.i32('tgid');
  const table = r.i32('table');
  const comm = r.str('comm');
  const cwd = r.str('cwd');
  // Version 3: /proc/PID/exe ('' when not known). Older images have no exe.
  const exe = version >= EXE_AND_OWNER_VERSION ? r.str('exe') : '';
  const argc = r.count('argc', 4);
  const argv: string[] = [];
  for (let i = 0; i < argc; i++) argv.push(r.str(`argv[${i}]`));
  // '' stands for "not known": one encoding for an absent exe (the format stays canonical).
  return exe === '' ? { pid, tgid, comm, argv, cwd, table } : { pid, tgid, comm, argv, cwd, exe, table };
}

/** Where the reader puts each record, in stream order, and whom it asks for the Checkpoint at the trailer. */
export interface RecordSink {
  /**
   * The next record: its payload is `win` from `start` to `end`, the record itself at
   * byte `at` of the image, its `n`th. (A view per record, or a location, is made only
   * where it is kept: most records need neither.)
   */
  record(kind: DataKind, win: Buffer, start: number, end: number, at: number, n: number): void;
  /** The next record, a large one left in the file (see decode.ts SPAN_BYTES). */
  span(kind: DataKind, span: PayloadSpan, at: number, n: number): void;
  /** At the trailer, its digest checked. */
  finish(where: ImageLocation): Checkpoint;
}

/** Where record `n` of `source`, at byte `at`, is. */
export function recordLocation(source: string, at: number, n: number, kind: DataKind): ImageLocation {
  return { source, offset: at, record: n, kind };
}

/** Builds the Checkpoint from records fed in stream order, each checked by the image rules. */
export class CheckpointBuilder implements RecordSink {
  constructor(
    private readonly version: number,
    private readonly source: string,
  ) {}
  private readonly rules = new ImageRules();
  private imageHeader: ImageHeader | undefined;
  private readonly processes: ProcessRecord[] = [];
  private readonly tables: FileTableRecord[] = [];
  private readonly files: FileRecord[] = [];

  record(kind: DataKind, win: Buffer, start: number, end: number, at: number, n: number): void {
    this.payload(kind, win.subarray(start, end), at, n);
  }

  span(kind: DataKind, span: PayloadSpan, at: number, n: number): void {
    this.payload(kind, span, at, n);
  }

  /** The next record, parsed already (parseRecord with this image's version). */
  parsed<K extends DataKind>(kind: K, value: RecordValues[K], where: ImageLocation): void {
    try {
      this.rules.begin(kind);
      this.take(kind, value, () => where);
    } catch (err) {
      throw locatedError(err, where);
    }
  }

  private payload(kind: DataKind, payload: Buffer | PayloadSpan, at: number, n: number): void {
    const where = (): ImageLocation => recordLocation(this.source, at, n, kind);
    try {
      this.rules.begin(kind);
      this.take(kind, parseRecord(kind, payload, this.version), where);
    } catch (err) {
      throw locatedError(err, where());
    }
  }

  finish(where: ImageLocation): Checkpoint {
    located(where, () => this.rules.finish());
    return { header: this.imageHeader!, processes: this.processes, tables: this.tables, files: this.files };
  }

  private take(kind: DataKind, value: RecordValues[DataKind], where: () => ImageLocation): void {
    switch (kind) {
      case 'header':
        this.imageHeader = value as ImageHeader;
        return;
      case 'file': {
        const rec = value as FileRecord;
        this.rules.file(rec, where);
        this.files.push(rec);
        return;
      }
      case 'name': {
        const path = value as string;
        this.rules.name(path);
        this.files[this.files.length - 1]!.path = path;
        return;
      }
      case 'owner': {
        const o = value as OwnerFields;
        this.rules.owner(o);
        this.files[this.files.length - 1]!.owner = {
          kind: OWNER_KINDS[o.kind - 1]!,
          id: o.id,
          signal: o.signal,
        };
        return;
      }
      case 'table': {
        const t = value as RecordValues['table'];
        this.rules.fileTable(t.objref, t.nfds);
        this.tables.push({ objref: t.objref, fds: [] });
        return;
      }
      case 'fd': {
        const rec = value as FdRecord;
        this.rules.fd(rec);
        this.tables[this.tables.length - 1]!.fds.push(rec);
        return;
      }
      case 'process': {
        const rec = value as ProcessRecord;
        this.rules.process(rec);
        this.processes.push(rec);
      }
    }
  }
}
