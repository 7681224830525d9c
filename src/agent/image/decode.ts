/**
 * The image reader: strict, record by record, never trusting a length
 * before checking it against the bytes that remain. The parsing logic is
 * one generator that asks for byte counts; decodeCheckpoint feeds it from a
 * Buffer and readImage from a file, 64 KiB at a time (a record over 1 MiB is
 * parsed in place, its memfd contents left in the file: StoredBytes). Nothing is returned
 * until the trailer's checksum and every cross-record rule have passed.
 */
import { createHash, type Hash } from 'node:crypto';
import { readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type {
  Checkpoint,
  FileRecord,
  FileTableRecord,
  ImageHeader,
  ProcessRecord,
  StoredBytes,
} from '../model.js';
import { ByteReader, type PayloadSpan } from './bytes.js';
import { ImageDigestError, ImageFormatError, RecordViolation, type ImageLocation } from './errors.js';
import { codecById } from './filedata/index.js';
import {
  BINDING_VERSION,
  DIGEST_BYTES,
  EXE_AND_OWNER_VERSION,
  READABLE_VERSIONS,
  OWNER_KINDS,
  MAGIC,
  PREAMBLE_BYTES,
  RECORD_HEADER_BYTES,
  recordKind,
  type RecordKind,
} from './format.js';
import { ImageRules } from './rules.js';

const IGNORE_REASONS = [undefined, 'type', 'fd'] as const;

/** Builds the Checkpoint from validated records. */
class CheckpointBuilder {
  constructor(private readonly version: number) {}
  private readonly rules = new ImageRules();
  private imageHeader: ImageHeader | undefined;
  private readonly processes: ProcessRecord[] = [];
  private readonly tables: FileTableRecord[] = [];
  private readonly files: FileRecord[] = [];

  record(kind: Exclude<RecordKind, 'trailer'>, payload: Buffer | PayloadSpan, where: ImageLocation): void {
    try {
      this.rules.begin(kind);
      const r = new ByteReader(payload);
      switch (kind) {
        case 'header':
          return this.header(r);
        case 'file':
          return this.file(r, where);
        case 'name':
          return this.name(r);
        case 'owner':
          return this.owner(r);
        case 'table':
          return this.table(r);
        case 'fd':
          return this.fd(r);
        case 'process':
          return this.process(r);
      }
    } catch (err) {
      if (err instanceof RecordViolation) throw new ImageFormatError(where, err.message);
      throw err;
    }
  }

  finish(where: ImageLocation): Checkpoint {
    try {
      this.rules.finish();
    } catch (err) {
      if (err instanceof RecordViolation) throw new ImageFormatError(where, err.message);
      throw err;
    }
    return { header: this.imageHeader!, processes: this.processes, tables: this.tables, files: this.files };
  }

  private header(r: ByteReader): void {
    const node = r.str('node');
    const source = r.str('source');
    const time = r.i64n('time');
    const kernel = r.str('kernel');
    const tool = r.str('tool');
    // Version 2: the Checkpoint the image belongs to (optional: CLI captures have none).
    const binding =
      this.version >= BINDING_VERSION && r.bool('bound')
        ? { namespace: r.str('namespace'), name: r.str('name'), uid: r.str('uid'), podUid: r.str('podUid') }
        : undefined;
    r.end();
    this.imageHeader = { node, source, time, kernel, tool, ...(binding ? { binding } : {}) };
  }

  private file(r: ByteReader, where: ImageLocation): void {
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
    if (mark >= IGNORE_REASONS.length)
      throw new RecordViolation(`field ignored: invalid ignore mark ${mark}`);
    const data = codec.decode(r, this.version);
    r.end();
    const rec: FileRecord = { objref, type: codec.type, flags, pos, path: '', mntId, dev, ino, mode, data };
    const reason = IGNORE_REASONS[mark];
    if (reason !== undefined) rec.ignored = { reason };
    this.rules.file(rec, where);
    this.files.push(rec);
  }

  private owner(r: ByteReader): void {
    const kind = r.u8('kind');
    const id = r.i32('id');
    const signal = r.i32('signal');
    r.end();
    this.rules.owner({ kind, id, signal });
    this.files[this.files.length - 1]!.owner = { kind: OWNER_KINDS[kind - 1]!, id, signal };
  }

  private name(r: ByteReader): void {
    const path = r.str('path');
    r.end();
    this.rules.name(path);
    this.files[this.files.length - 1]!.path = path;
  }

  private table(r: ByteReader): void {
    const objref = r.i32('objref');
    const nfds = r.u32('nfds');
    r.end();
    this.rules.fileTable(objref, nfds);
    this.tables.push({ objref, fds: [] });
  }

  private fd(r: ByteReader): void {
    const fd = r.i32('fd');
    const file = r.i32('file');
    const cloexec = r.bool('cloexec');
    r.end();
    const rec = { fd, file, cloexec };
    this.rules.fd(rec);
    this.tables[this.tables.length - 1]!.fds.push(rec);
  }

  private process(r: ByteReader): void {
    const pid = r.i32('pid');
    const tgid = r.i32('tgid');
    const table = r.i32('table');
    const comm = r.str('comm');
    const cwd = r.str('cwd');
    // Version 3: /proc/PID/exe ('' when not known). Older images have no exe.
    const exe = this.version >= EXE_AND_OWNER_VERSION ? r.str('exe') : '';
    const argc = r.count('argc', 4);
    const argv: string[] = [];
    for (let i = 0; i < argc; i++) argv.push(r.str(`argv[${i}]`));
    r.end();
    // '' stands for "not known": one encoding for an absent exe (the format stays canonical).
    const rec =
      exe === '' ? { pid, tgid, comm, argv, cwd, table } : { pid, tgid, comm, argv, cwd, exe, table };
    this.rules.process(rec);
    this.processes.push(rec);
  }
}

/**
 * The reader as a generator: it yields how many bytes it needs next and is
 * resumed with exactly that many. It never asks for more than remain of
 * `size`, so a huge declared length costs no allocation.
 */
/** A decoded image and the format version its preamble gave (older images keep theirs). */
export interface DecodedImage {
  checkpoint: Checkpoint;
  version: number;
}

/**
 * What the reader asks its feeder for: the next `n` bytes; or (`span`) the next `n`
 * bytes as a PayloadSpan, left in the file; or (`hash`) a span's bytes fed to `into`
 * and to each of the span's stored ranges' own hashes.
 */
type Need = number | { span: number } | { hash: PayloadSpan; into: Hash };

/** Records above this are read as spans (only from a file): the rest are read whole. */
const SPAN_BYTES = 1 << 20;

function* decodeSteps(
  source: string,
  size: number,
  spans: boolean,
  expectSha256?: string,
): Generator<Need, DecodedImage, Buffer | PayloadSpan> {
  if (size < PREAMBLE_BYTES) {
    const head = (yield size) as Buffer;
    if (!MAGIC.subarray(0, Math.min(size, MAGIC.length)).equals(head.subarray(0, MAGIC.length))) {
      throw new ImageFormatError({ source, offset: 0 }, 'bad magic: not an fdckpt image');
    }
    throw new ImageFormatError(
      { source, offset: 0 },
      `truncated: ${size} bytes, shorter than the ${PREAMBLE_BYTES}-byte preamble`,
    );
  }
  const pre = (yield PREAMBLE_BYTES) as Buffer;
  if (!pre.subarray(0, MAGIC.length).equals(MAGIC)) {
    const got = pre.subarray(0, MAGIC.length).toString('hex');
    throw new ImageFormatError({ source, offset: 0 }, `bad magic ${got}: not an fdckpt image`);
  }
  const version = pre.readUInt32LE(MAGIC.length);
  if (!READABLE_VERSIONS.includes(version)) {
    throw new ImageFormatError(
      { source, offset: MAGIC.length },
      `unknown format version ${version} (this reader knows versions ${READABLE_VERSIONS.join(', ')})`,
    );
  }
  const hash = createHash('sha256').update(pre);
  const builder = new CheckpointBuilder(version);
  let at = PREAMBLE_BYTES;
  for (let n = 1; ; n++) {
    const left = size - at;
    if (left === 0) {
      throw new ImageFormatError(
        { source, offset: at },
        `truncated: the image ends after ${n - 1} records, without a trailer`,
      );
    }
    if (left < RECORD_HEADER_BYTES) {
      const where = { source, offset: at, record: n };
      throw new ImageFormatError(
        where,
        `truncated record header: ${left} bytes left, a header is ${RECORD_HEADER_BYTES}`,
      );
    }
    const head = (yield RECORD_HEADER_BYTES) as Buffer;
    const type = head.readUInt32LE(0);
    const length = head.readUInt32LE(4);
    const kind = recordKind(type);
    const where = { source, offset: at, record: n, kind: kind ?? `type ${type}` };
    if (kind === undefined) throw new ImageFormatError(where, `unknown record type ${type}`);
    if (kind === 'owner' && version < EXE_AND_OWNER_VERSION)
      throw new ImageFormatError(where, `record type ${type} (owner) in a version ${version} image`);
    if (length > left - RECORD_HEADER_BYTES) {
      const rest = left - RECORD_HEADER_BYTES;
      throw new ImageFormatError(
        where,
        `truncated: length ${length} runs past the end of the image (${rest} bytes left)`,
      );
    }
    at += RECORD_HEADER_BYTES + length;
    if (kind !== 'trailer' && spans && length > SPAN_BYTES) {
      // A large record (a memfd's contents) is parsed in place; its bytes are hashed after.
      hash.update(head);
      const span = (yield { span: length }) as PayloadSpan;
      builder.record(kind, span, where);
      yield { hash: span, into: hash };
      continue;
    }
    const payload = (length === 0 ? Buffer.alloc(0) : yield length) as Buffer;
    if (kind === 'trailer') {
      // The whole file's digest is the records' and then the trailer's: the same pass gives both.
      if (expectSha256 !== undefined) {
        const actual = hash.copy().update(head).update(payload).digest('hex');
        if (actual !== expectSha256) throw new ImageDigestError(source, expectSha256, actual);
      }
      checkDigest(payload, hash.digest(), where);
      const cp = builder.finish(where);
      if (at !== size) {
        throw new ImageFormatError(
          { source, offset: at },
          `${size - at} bytes of trailing garbage after the trailer`,
        );
      }
      return { checkpoint: cp, version };
    }
    hash.update(head).update(payload);
    builder.record(kind, payload, where);
  }
}

function checkDigest(stored: Buffer, actual: Buffer, where: ImageLocation): void {
  if (stored.length !== DIGEST_BYTES) {
    throw new ImageFormatError(where, `trailer length ${stored.length}, a SHA-256 digest is ${DIGEST_BYTES}`);
  }
  if (!stored.equals(actual)) {
    const msg = `bad checksum: the trailer says ${stored.toString('hex')}, the image hashes to ${actual.toString('hex')}`;
    throw new ImageFormatError(where, msg);
  }
}

/**
 * Reads an image held in memory. Throws ImageFormatError, naming the byte
 * offset and record, for any malformed input. `source` names the image in
 * messages.
 */
export function decodeCheckpoint(buf: Buffer, source = 'image'): Checkpoint {
  const steps = decodeSteps(source, buf.length, false);
  let at = 0;
  let step = steps.next();
  while (!step.done) {
    const n = step.value as number; // no spans asked for: only byte counts
    step = steps.next(buf.subarray(at, at + n));
    at += n;
  }
  return step.value.checkpoint;
}

const CHUNK_BYTES = 64 * 1024;

/** Hands out exact byte counts from a file, reading it in large chunks. */
class ChunkedReader {
  private buf = Buffer.alloc(0);
  private at = 0;
  private offset = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
  ) {}

  async read(n: number): Promise<Buffer> {
    if (this.buf.length - this.at < n) await this.refill(n);
    return this.take(n)!;
  }

  /**
   * The next `n` bytes when they are buffered already, else undefined (read() them):
   * most records are, and an await per record was most of what the reader allocated.
   */
  take(n: number): Buffer | undefined {
    if (this.buf.length - this.at < n) return undefined;
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  /** The next `n` bytes as a span: nothing read but the small fields the parser asks for. */
  span(n: number): FileSpan {
    const buffered = this.buf.length - this.at;
    const span = new FileSpan(this.fh.fd, this.path, this.offset - buffered, n);
    if (n <= buffered) this.at += n;
    else {
      this.offset += n - buffered;
      this.buf = Buffer.alloc(0);
      this.at = 0;
    }
    return span;
  }

  /** A fresh buffer each time: views handed out earlier stay valid. */
  private async refill(n: number): Promise<void> {
    const kept = this.buf.length - this.at;
    const next = Buffer.allocUnsafe(Math.max(n, CHUNK_BYTES));
    this.buf.copy(next, 0, this.at);
    let filled = kept;
    while (filled < n) {
      const { bytesRead } = await this.fh.read(next, filled, next.length - filled, this.offset);
      if (bytesRead === 0) throw shrank(this.path, this.offset);
      filled += bytesRead;
      this.offset += bytesRead;
    }
    this.buf = next.subarray(0, filled);
    this.at = 0;
  }
}

function shrank(path: string, offset: number): ImageFormatError {
  return new ImageFormatError({ source: path, offset }, 'truncated: the file shrank while being read');
}

/** A large record's payload in the image file, read where the parser needs it. */
class FileSpan implements PayloadSpan {
  readonly stored: StoredBytes[] = [];

  constructor(
    private readonly fd: number,
    readonly image: string,
    readonly offset: number,
    readonly length: number,
  ) {}

  /** Synchronous: the parser is; it reads a record's few small fields, a window at a time. */
  read(at: number, n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let filled = 0; filled < n;) {
      const got = readSync(this.fd, out, filled, n - filled, this.offset + at + filled);
      if (got === 0) throw shrank(this.image, this.offset + at + filled);
      filled += got;
    }
    return out;
  }

  /** Feeds every byte to `into`, and each stored range's bytes to its own hash, one chunk at a time. */
  async hash(fh: FileHandle, into: Hash): Promise<void> {
    const own = this.stored.map((s) => ({ s, h: createHash('sha256') }));
    const chunk = Buffer.allocUnsafe(Math.min(SPAN_HASH_BYTES, this.length));
    for (let done = 0; done < this.length;) {
      const want = Math.min(chunk.length, this.length - done);
      const { bytesRead } = await fh.read(chunk, 0, want, this.offset + done);
      if (bytesRead === 0) throw shrank(this.image, this.offset + done);
      const bytes = chunk.subarray(0, bytesRead);
      into.update(bytes);
      const from = this.offset + done;
      for (const { s, h } of own) {
        const lo = Math.max(from, s.offset);
        const hi = Math.min(from + bytesRead, s.offset + s.length);
        if (lo < hi) h.update(bytes.subarray(lo - from, hi - from));
      }
      done += bytesRead;
    }
    for (const { s, h } of own) s.sha256 = h.digest();
  }
}

const SPAN_HASH_BYTES = 1 << 20;

/** Options of readImage() and readImageFile(). */
export interface ReadImageOptions {
  /**
   * The SHA-256 (hex) the whole file must have: checked in the same pass that reads
   * it, before the checkpoint is returned. A file that differs is an ImageDigestError
   * naming both digests, even when it is malformed too.
   */
  expectSha256?: string;
}

/** The SHA-256 of a whole file, for the error path only (a read already failed). */
async function fileSha256(fh: FileHandle): Promise<string> {
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(SPAN_HASH_BYTES);
  for (let at = 0; ;) {
    const { bytesRead } = await fh.read(chunk, 0, chunk.length, at);
    if (bytesRead === 0) return hash.digest('hex');
    hash.update(chunk.subarray(0, bytesRead));
    at += bytesRead;
  }
}

/**
 * Reads and validates the image file at `path`, streaming it record by record; also
 * gives the image's own format version (for `inspect`). A large memfd's contents
 * are not read into memory: they come back as StoredBytes of this file, with the
 * hash of their bytes as the image's checksum was checked.
 */
export async function readImageFile(path: string, options: ReadImageOptions = {}): Promise<DecodedImage> {
  const fh = await open(path, 'r');
  try {
    return await decodeFile(fh, path, options.expectSha256);
  } catch (err) {
    // A file that is not the one expected says so, rather than where its bytes broke a rule.
    if (options.expectSha256 === undefined || !(err instanceof ImageFormatError)) throw err;
    const actual = await fileSha256(fh);
    if (actual !== options.expectSha256) throw new ImageDigestError(path, options.expectSha256, actual);
    throw err;
  } finally {
    await fh.close();
  }
}

async function decodeFile(fh: FileHandle, path: string, expectSha256?: string): Promise<DecodedImage> {
  const { size } = await fh.stat();
  const reader = new ChunkedReader(fh, path);
  const steps = decodeSteps(path, size, true, expectSha256);
  let step = steps.next();
  while (!step.done) {
    const need = step.value;
    if (typeof need === 'number') step = steps.next(reader.take(need) ?? (await reader.read(need)));
    else if ('span' in need) step = steps.next(reader.span(need.span));
    else {
      await (need.hash as FileSpan).hash(fh, need.into);
      step = steps.next(Buffer.alloc(0));
    }
  }
  return step.value;
}

/** Reads and validates the image file at `path`, streaming it record by record (see ReadImageOptions). */
export async function readImage(path: string, options: ReadImageOptions = {}): Promise<Checkpoint> {
  return (await readImageFile(path, options)).checkpoint;
}
