/**
 * The reader's sink for restoring one process (ReadImageOptions.only): a restore of
 * one process of a six-process image needs a sixth of its files, and parsing the rest
 * was most of what such a restore spent reading.
 *
 * While the records stream by, each is framed and sequenced by a frame-only
 * ImageRules (skipFile, skipName, skipFd: what follows what, how many fd records a
 * table has, every objref unique), and kept as its payload, a view of the bytes read;
 * tables and processes are small and parsed at once. At the trailer, its digest
 * checked, the chosen process gives its table, the table its files, an epoll its
 * targets; only those records are parsed, and fed in stream order through a
 * CheckpointBuilder, whose own ImageRules checks them as in a full read. A record
 * over the span size (a large memfd) is parsed as it arrives, as in a full read:
 * its contents are hashed in that same pass, never read twice.
 */
import type { Checkpoint, FdRecord, FileRecord, ProcessRecord } from '../model.js';
import { ByteReader, type PayloadSpan } from './bytes.js';
import type { ImageLocation } from './errors.js';
import { codecOf } from './filedata/index.js';
import {
  CheckpointBuilder,
  located,
  locatedError,
  parseRecord,
  recordLocation,
  type DataKind,
  type RecordSink,
  type RecordValues,
} from './records.js';
import { ImageRules } from './rules.js';

const NONE = -1;

/** Records held before the columns first grow (they double after). */
const CAPACITY = 16384;

/**
 * The records kept for later, as columns: where each payload lies (which buffer, at what
 * byte, how long) and where it came from. No object per record survives the stream
 * (a survivor is what the young generation pays to copy); the payload is a view again
 * only when it is parsed. A span (parsed as it arrives) keeps its values instead.
 */
class HeldRecords {
  private readonly buffers: ArrayBufferLike[] = [];
  private buf = new Int32Array(CAPACITY);
  private byteOffset = new Int32Array(CAPACITY);
  private length = new Int32Array(CAPACITY);
  private offset = new Float64Array(CAPACITY);
  private index = new Int32Array(CAPACITY);
  private kind = new Uint8Array(CAPACITY);
  private readonly spans = new Map<number, unknown>();
  private count = 0;

  constructor(private readonly source: string) {}

  /** Keeps record `n` (at byte `at`), its payload `win` from `start` to `end`; its id. */
  hold(kind: DataKind, win: Buffer, start: number, end: number, at: number, n: number): number {
    const id = this.next(kind, at, n);
    if (this.buffers[this.buffers.length - 1] !== win.buffer) this.buffers.push(win.buffer);
    this.buf[id] = this.buffers.length - 1;
    this.byteOffset[id] = win.byteOffset + start;
    this.length[id] = end - start;
    return id;
  }

  /** Keeps record `n` (at byte `at`) as its values, parsed already. */
  holdParsed(kind: DataKind, value: unknown, at: number, n: number): number {
    const id = this.next(kind, at, n);
    this.spans.set(id, value);
    return id;
  }

  /** Whether record `id` is one of this kind. */
  is(id: number, kind: DataKind): boolean {
    return id < this.count && this.kind[id] === KIND_CODE[kind];
  }

  /** The values of record `id` when it was held parsed (a span), else undefined. */
  parsed<T>(id: number): T | undefined {
    return this.spans.get(id) as T | undefined;
  }

  /** The payload of record `id` (held as bytes: not a span). */
  payload(id: number): Buffer {
    return Buffer.from(this.buffers[this.buf[id]!]!, this.byteOffset[id], this.length[id]);
  }

  where(id: number, kind: DataKind): ImageLocation {
    return recordLocation(this.source, this.offset[id]!, this.index[id]!, kind);
  }

  private next(kind: DataKind, at: number, n: number): number {
    const id = this.count++;
    if (id === this.buf.length) this.grow();
    this.offset[id] = at;
    this.index[id] = n;
    this.kind[id] = KIND_CODE[kind];
    return id;
  }

  private grow(): void {
    const twice = <T extends Int32Array | Float64Array | Uint8Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(a.length * 2);
      b.set(a);
      return b;
    };
    this.buf = twice(this.buf);
    this.byteOffset = twice(this.byteOffset);
    this.length = twice(this.length);
    this.offset = twice(this.offset);
    this.index = twice(this.index);
    this.kind = twice(this.kind);
  }
}

const KIND_CODE: Record<DataKind, number> = {
  header: 1,
  file: 2,
  name: 3,
  owner: 4,
  table: 5,
  fd: 6,
  process: 7,
};

interface HeldTable {
  value: RecordValues['table'];
  where: ImageLocation;
  /** The held id of its first fd record (the rest follow it). */
  firstFd: number;
}

export class ProcessSelector implements RecordSink {
  private readonly frame = new ImageRules();
  private readonly out: CheckpointBuilder;
  private readonly held: HeldRecords;
  /** File objref → the held id of its file record. */
  private readonly fileOf = new Map<number, number>();
  private readonly tables: HeldTable[] = [];
  private readonly processes: { value: ProcessRecord; where: ImageLocation }[] = [];

  /** `pid`: the process to restore (default: the image's first); `source` names the image. */
  constructor(
    private readonly version: number,
    private readonly pid: number | undefined,
    private readonly source: string,
  ) {
    this.out = new CheckpointBuilder(version, source);
    this.held = new HeldRecords(source);
  }

  record(kind: DataKind, win: Buffer, start: number, end: number, at: number, n: number): void {
    try {
      this.frame.begin(kind);
      switch (kind) {
        case 'header':
          return this.out.record(kind, win, start, end, at, n);
        case 'file': {
          const objref =
            end - start >= 4
              ? win.readInt32LE(start)
              : new ByteReader(win.subarray(start, end)).i32('objref');
          this.frame.skipFile(objref);
          this.fileOf.set(objref, this.held.hold(kind, win, start, end, at, n));
          return;
        }
        case 'name':
          this.frame.skipName();
          this.held.hold(kind, win, start, end, at, n);
          return;
        case 'owner':
        case 'fd':
          this.kept(kind, this.held.hold(kind, win, start, end, at, n));
          return;
        default:
          this.small(kind, parseRecord(kind, win.subarray(start, end), this.version), at, n);
      }
    } catch (err) {
      throw locatedError(err, recordLocation(this.source, at, n, kind));
    }
  }

  span(kind: DataKind, span: PayloadSpan, at: number, n: number): void {
    try {
      this.frame.begin(kind);
      if (kind === 'header') return this.out.span(kind, span, at, n);
      // Parsed as it arrives, so that its stored contents are hashed in this same pass.
      const value = parseRecord(kind, span, this.version);
      switch (kind) {
        case 'file': {
          const objref = (value as FileRecord).objref;
          this.frame.skipFile(objref);
          this.fileOf.set(objref, this.held.holdParsed(kind, value, at, n));
          return;
        }
        case 'name':
          this.frame.skipName();
          this.held.holdParsed(kind, value, at, n);
          return;
        case 'owner':
        case 'fd':
          this.kept(kind, this.held.holdParsed(kind, value, at, n));
          return;
        default:
          this.small(kind, value as RecordValues['table' | 'process'], at, n);
      }
    } catch (err) {
      throw locatedError(err, recordLocation(this.source, at, n, kind));
    }
  }

  /** An owner or fd record, held as `id`. */
  private kept(kind: 'owner' | 'fd', id: number): void {
    if (kind === 'owner') return;
    this.frame.skipFd();
    const t = this.tables[this.tables.length - 1]!;
    if (t.firstFd === NONE) t.firstFd = id;
  }

  /** A table or process record: parsed at once, and checked in full by the frame's rules. */
  private small(kind: DataKind, value: RecordValues['table' | 'process'], at: number, n: number): void {
    const where = recordLocation(this.source, at, n, kind);
    if (kind === 'table') {
      const t = value as RecordValues['table'];
      this.frame.fileTable(t.objref, t.nfds);
      this.tables.push({ value: t, where, firstFd: NONE });
    } else {
      const p = value as ProcessRecord;
      this.frame.process(p);
      this.processes.push({ value: p, where });
    }
  }

  finish(where: ImageLocation): Checkpoint {
    located(where, () => this.frame.finish());
    const chosen =
      this.pid === undefined ? this.processes[0] : this.processes.find((p) => p.value.pid === this.pid);
    if (chosen !== undefined) {
      // The frame's rules checked that the process names a table of the image.
      const table = this.tables.find((t) => t.value.objref === chosen.value.table)!;
      const fds: FdRecord[] = [];
      for (let i = 0; i < table.value.nfds; i++) fds.push(this.valueOf('fd', table.firstFd + i));
      for (const { id, file } of this.filesNeeded(fds)) {
        this.out.parsed('file', file, this.held.where(id, 'file'));
        // The frame checked that its name follows each file, and an owner (if any) the name.
        this.out.parsed('name', this.valueOf('name', id + 1), this.held.where(id + 1, 'name'));
        if (this.held.is(id + 2, 'owner'))
          this.out.parsed('owner', this.valueOf('owner', id + 2), this.held.where(id + 2, 'owner'));
      }
      this.out.parsed('table', table.value, table.where);
      fds.forEach((fd, i) => this.out.parsed('fd', fd, this.held.where(table.firstFd + i, 'fd')));
      for (const p of this.processes)
        if (p.value.table === table.value.objref) this.out.parsed('process', p.value, p.where);
    }
    return this.out.finish(where);
  }

  /**
   * The held ids of the files the fds name and, transitively, of the files those name,
   * in stream order. An objref that names no file is left out: the builder's rules say
   * so at the fd (or at the epoll) that names it.
   */
  private filesNeeded(fds: FdRecord[]): { id: number; file: FileRecord }[] {
    // Parsed files by held id, in an array: ids ascend in stream order, so no sort is needed.
    const wanted: (FileRecord | undefined)[] = [];
    const queue = fds.map((f) => f.file);
    while (queue.length > 0) {
      const id = this.fileOf.get(queue.pop()!);
      if (id === undefined || wanted[id] !== undefined) continue;
      const file = this.valueOf('file', id);
      wanted[id] = file;
      for (const ref of codecOf(file.type).fileRefs?.of(file.data) ?? []) queue.push(ref.objref);
    }
    const out: { id: number; file: FileRecord }[] = [];
    wanted.forEach((file, id) => out.push({ id, file: file! })); // forEach skips the holes
    return out;
  }

  /** A held record's values. */
  private valueOf<K extends DataKind>(kind: K, id: number): RecordValues[K] {
    return (
      this.held.parsed<RecordValues[K]>(id) ??
      located(this.held.where(id, kind), () => parseRecord(kind, this.held.payload(id), this.version))
    );
  }
}
