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
import type { Checkpoint, StoredBytes } from '../model.js';
import type { PayloadSpan } from './bytes.js';
import { ImageDigestError, ImageFormatError, type ImageLocation } from './errors.js';
import {
  DIGEST_BYTES,
  EXE_AND_OWNER_VERSION,
  READABLE_VERSIONS,
  MAGIC,
  PREAMBLE_BYTES,
  RECORD_HEADER_BYTES,
  recordKind,
} from './format.js';
import { CheckpointBuilder, type RecordSink } from './records.js';
import { ProcessSelector } from './select.js';

/** A decoded image and the format version its preamble gave (older images keep theirs). */
export interface DecodedImage {
  checkpoint: Checkpoint;
  version: number;
}

/**
 * What the reader asks its feeder for, each time telling how many bytes of the window
 * it was last given it has consumed: (`more`) a window that starts at the first byte
 * not consumed and holds at least `more` bytes (a feeder may give more, and the reader
 * parses every record a window holds before it asks again); or (`span`) the next `span`
 * bytes as a PayloadSpan, left in the file; or (`hash`) a span's bytes fed to `into`
 * and to each of the span's stored ranges' own hashes.
 */
type Need =
  { more: number; consumed: number } | { span: number; consumed: number } | { hash: PayloadSpan; into: Hash };

/** Records above this are read as spans (only from a file): the rest are read whole. */
const SPAN_BYTES = 1 << 20;

const EMPTY: Buffer = Buffer.alloc(0);

/**
 * The reader as a generator: it asks for bytes only when its window runs short, and
 * never for more than remain of `size`, so a huge declared length costs no allocation.
 * Records are parsed where they lie in the window (a payload is a view of it) and the
 * checksum takes the window's bytes in one piece: per record, only the parse is paid.
 */
function* decodeSteps(
  source: string,
  size: number,
  spans: boolean,
  options: ReadImageOptions = {},
): Generator<Need, DecodedImage, Buffer | PayloadSpan> {
  let win: Buffer = EMPTY;
  let pos = 0;
  const hash = createHash('sha256');
  /** Bytes of `win` before this are in `hash` already. */
  let hashed = 0;
  /** Consumed bytes into the checksum, then a window with `n` bytes from the next one. */
  function* ensure(n: number): Generator<Need, void, Buffer | PayloadSpan> {
    if (win.length - pos >= n) return;
    hash.update(win.subarray(hashed, pos));
    win = (yield { more: n, consumed: pos }) as Buffer;
    pos = 0;
    hashed = 0;
  }

  if (size < PREAMBLE_BYTES) {
    yield* ensure(size);
    if (
      !MAGIC.subarray(0, Math.min(size, MAGIC.length)).equals(win.subarray(0, Math.min(size, MAGIC.length)))
    ) {
      throw new ImageFormatError({ source, offset: 0 }, 'bad magic: not an fdckpt image');
    }
    throw new ImageFormatError(
      { source, offset: 0 },
      `truncated: ${size} bytes, shorter than the ${PREAMBLE_BYTES}-byte preamble`,
    );
  }
  yield* ensure(PREAMBLE_BYTES);
  if (!win.subarray(0, MAGIC.length).equals(MAGIC)) {
    const got = win.subarray(0, MAGIC.length).toString('hex');
    throw new ImageFormatError({ source, offset: 0 }, `bad magic ${got}: not an fdckpt image`);
  }
  const version = win.readUInt32LE(MAGIC.length);
  if (!READABLE_VERSIONS.includes(version)) {
    throw new ImageFormatError(
      { source, offset: MAGIC.length },
      `unknown format version ${version} (this reader knows versions ${READABLE_VERSIONS.join(', ')})`,
    );
  }
  pos = PREAMBLE_BYTES;
  const { expectSha256, only } = options;
  const builder: RecordSink = only
    ? new ProcessSelector(version, only.pid, source)
    : new CheckpointBuilder(version, source);
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
    if (win.length - pos < RECORD_HEADER_BYTES) yield* ensure(RECORD_HEADER_BYTES);
    const type = win.readUInt32LE(pos);
    const length = win.readUInt32LE(pos + 4);
    const kind = recordKind(type);
    const where = (): ImageLocation => ({
      source,
      offset: recordAt,
      record: n,
      kind: kind ?? `type ${type}`,
    });
    const recordAt = at;
    if (kind === undefined) throw new ImageFormatError(where(), `unknown record type ${type}`);
    if (kind === 'owner' && version < EXE_AND_OWNER_VERSION)
      throw new ImageFormatError(where(), `record type ${type} (owner) in a version ${version} image`);
    if (length > left - RECORD_HEADER_BYTES) {
      const rest = left - RECORD_HEADER_BYTES;
      throw new ImageFormatError(
        where(),
        `truncated: length ${length} runs past the end of the image (${rest} bytes left)`,
      );
    }
    at += RECORD_HEADER_BYTES + length;
    if (kind !== 'trailer' && spans && length > SPAN_BYTES) {
      // A large record (a memfd's contents) is parsed in place; its bytes are hashed after.
      pos += RECORD_HEADER_BYTES;
      hash.update(win.subarray(hashed, pos));
      const span = (yield { span: length, consumed: pos }) as PayloadSpan;
      win = EMPTY;
      pos = 0;
      hashed = 0;
      builder.span(kind, span, recordAt, n);
      yield { hash: span, into: hash };
      continue;
    }
    if (win.length - pos < RECORD_HEADER_BYTES + length) yield* ensure(RECORD_HEADER_BYTES + length);
    const head = pos;
    pos += RECORD_HEADER_BYTES + length;
    if (kind === 'trailer') {
      // The whole file's digest is the records' and then the trailer's: the same pass gives both.
      hash.update(win.subarray(hashed, head));
      if (expectSha256 !== undefined) {
        const actual = hash.copy().update(win.subarray(head, pos)).digest('hex');
        if (actual !== expectSha256) throw new ImageDigestError(source, expectSha256, actual);
      }
      checkDigest(win.subarray(head + RECORD_HEADER_BYTES, pos), hash.digest(), where());
      const cp = builder.finish(where());
      if (at !== size) {
        throw new ImageFormatError(
          { source, offset: at },
          `${size - at} bytes of trailing garbage after the trailer`,
        );
      }
      return { checkpoint: cp, version };
    }
    builder.record(kind, win, head + RECORD_HEADER_BYTES, pos, recordAt, n);
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
export function decodeCheckpoint(
  buf: Buffer,
  source = 'image',
  options: Pick<ReadImageOptions, 'only'> = {},
): Checkpoint {
  const steps = decodeSteps(source, buf.length, false, options);
  let at = 0;
  let step = steps.next();
  while (!step.done) {
    // No spans asked for: only windows, and the rest of the buffer is one.
    const need = step.value as { more: number; consumed: number };
    at += need.consumed;
    step = steps.next(buf.subarray(at));
  }
  return step.value.checkpoint;
}

const CHUNK_BYTES = 64 * 1024;

/** Hands out windows of a file, reading it in large chunks. */
class ChunkedReader {
  private buf = Buffer.alloc(0);
  private at = 0;
  private offset = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
  ) {}

  /** Drops the `consumed` bytes of the last window; the next window, holding at least `n` bytes. */
  async window(consumed: number, n: number): Promise<Buffer> {
    this.at += consumed;
    if (this.buf.length - this.at < n) await this.refill(n);
    return this.buf.subarray(this.at);
  }

  /** The next `n` bytes as a span: nothing read but the small fields the parser asks for. */
  span(consumed: number, n: number): FileSpan {
    this.at += consumed;
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
  /**
   * Decode only what restoring process `pid` (default: the image's first) needs: its
   * file table, the files that table names and the files those name (an epoll's
   * targets), and the processes that share the table. Every record of the image is
   * still framed, put in sequence and hashed, and every objref checked unique; the
   * other records' fields are not parsed, nor checked (select.ts). The Checkpoint holds
   * what was decoded; none at all when no process has that pid.
   */
  only?: { pid?: number };
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
    return await decodeFile(fh, path, options);
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

async function decodeFile(fh: FileHandle, path: string, options: ReadImageOptions): Promise<DecodedImage> {
  const { size } = await fh.stat();
  const reader = new ChunkedReader(fh, path);
  const steps = decodeSteps(path, size, true, options);
  let step = steps.next();
  while (!step.done) {
    const need = step.value;
    if ('more' in need) step = steps.next(await reader.window(need.consumed, need.more));
    else if ('span' in need) step = steps.next(reader.span(need.consumed, need.span));
    else {
      await (need.hash as FileSpan).hash(fh, need.into);
      step = steps.next(EMPTY);
    }
  }
  return step.value;
}

/** Reads and validates the image file at `path`, streaming it record by record (see ReadImageOptions). */
export async function readImage(path: string, options: ReadImageOptions = {}): Promise<Checkpoint> {
  return (await readImageFile(path, options)).checkpoint;
}
