/**
 * Field-level encoding shared by every record: fixed-width little-endian
 * integers, 0/1 booleans, length-prefixed byte strings and UTF-8 strings.
 * Both sides name the field they handle, so a bad value is reported as
 * `field pos: ...` by the record loop.
 */
import type { StoredBytes } from '../model.js';
import { RecordViolation } from './errors.js';

const MAX_U32 = 0xffff_ffff;
const MAX_U64 = (1n << 64n) - 1n;
const TWO_32 = 0x1_0000_0000;
/** The high u32 of 2^53-1. */
const MAX_SAFE_HI = 0x1f_ffff;
const MIN_I32 = -0x8000_0000;
const MAX_I32 = 0x7fff_ffff;

/** Lone UTF-16 surrogates have no UTF-8 form; encoding them would not round-trip. */
const LONE_SURROGATE = /\p{Cs}/u;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function bad(field: string, why: string): RecordViolation {
  return new RecordViolation(`field ${field}: ${why}`);
}

/** Where bytes handed out as they are (not copied into the buffer) go in the output. */
interface External {
  /** Offset in the buffer they precede. */
  at: number;
  bytes: Buffer | StoredBytes;
}

/**
 * Builds record payloads in a growing buffer. Large contents are not copied into it
 * (`external`): they are handed out by `drain` in their place, as they are.
 */
export class ByteWriter {
  private buf = Buffer.allocUnsafe(256);
  private len = 0;
  private externals: External[] = [];
  private externalBytes = 0;

  /** The bytes in the buffer (a view, valid until the next write). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  /** Bytes in the buffer: offsets for patchU32. */
  get length(): number {
    return this.len;
  }

  /** Bytes of output so far, external ones included. */
  get size(): number {
    return this.len + this.externalBytes;
  }

  /** Forgets the bytes written, keeping the buffer for reuse. */
  reset(): void {
    this.len = 0;
    this.externals = [];
    this.externalBytes = 0;
  }

  /**
   * The output so far, in order: copies of the buffered bytes and the external
   * bytes themselves; then forgets it (reset).
   */
  drain(): (Buffer | StoredBytes)[] {
    const parts: (Buffer | StoredBytes)[] = [];
    let from = 0;
    for (const e of this.externals) {
      if (e.at > from) parts.push(Buffer.from(this.buf.subarray(from, e.at)));
      parts.push(e.bytes);
      from = e.at;
    }
    if (this.len > from) parts.push(Buffer.from(this.buf.subarray(from, this.len)));
    this.reset();
    return parts;
  }

  /** u32 length, then the bytes, not copied: `drain` hands them out in their place. */
  external(field: string, v: Buffer | StoredBytes): void {
    if (!Buffer.isBuffer(v) && !Number.isSafeInteger((v as Partial<StoredBytes> | undefined)?.length))
      throw bad(field, 'is neither a Buffer nor stored bytes');
    this.u32(field, v.length);
    if (v.length === 0) return;
    this.externals.push({ at: this.len, bytes: v });
    this.externalBytes += v.length;
  }

  /** Overwrites a u32 written earlier (a record length, known only at the end). */
  patchU32(at: number, v: number): void {
    if (v > MAX_U32) throw bad('length', `record payload of ${v} bytes does not fit a u32`);
    this.buf.writeUInt32LE(v, at);
  }

  /** Bytes with no length prefix (magic, digest). */
  raw(v: Buffer): void {
    const at = this.room(v.length);
    v.copy(this.buf, at);
  }

  private room(n: number): number {
    if (this.len + n > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    const at = this.len;
    this.len += n;
    return at;
  }

  u8(field: string, v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw bad(field, `${v} is not a u8`);
    const at = this.room(1);
    this.buf[at] = v;
  }

  u16(field: string, v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw bad(field, `${v} is not a u16`);
    const at = this.room(2);
    this.buf.writeUInt16LE(v, at);
  }

  u32(field: string, v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > MAX_U32) throw bad(field, `${v} is not a u32`);
    const at = this.room(4);
    this.buf.writeUInt32LE(v, at);
  }

  i32(field: string, v: number): void {
    if (!Number.isInteger(v) || v < MIN_I32 || v > MAX_I32) throw bad(field, `${v} is not an i32`);
    const at = this.room(4);
    this.buf.writeInt32LE(v, at);
  }

  /** A non-negative JS number stored as u64; only safe integers fit the model. */
  u64n(field: string, v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw bad(field, `${v} is not a u64 safe integer`);
    // Two u32 halves: exact for safe integers, and far cheaper than a BigInt round trip.
    const at = this.room(8);
    this.buf.writeUInt32LE(v % TWO_32, at);
    this.buf.writeUInt32LE(Math.floor(v / TWO_32), at + 4);
  }

  /** A signed JS number stored as i64 (a time may precede the epoch). */
  i64n(field: string, v: number): void {
    if (!Number.isSafeInteger(v)) throw bad(field, `${v} is not an i64 safe integer`);
    if (v >= 0) return this.u64n(field, v);
    const at = this.room(8);
    this.buf.writeBigInt64LE(BigInt(v), at);
  }

  u64(field: string, v: bigint): void {
    if (typeof v !== 'bigint' || v < 0n || v > MAX_U64) throw bad(field, `${String(v)} is not a u64`);
    const at = this.room(8);
    this.buf.writeBigUInt64LE(v, at);
  }

  bool(field: string, v: boolean): void {
    if (typeof v !== 'boolean') throw bad(field, `${String(v)} is not a boolean`);
    const at = this.room(1);
    this.buf[at] = v ? 1 : 0;
  }

  /** u32 length, then the bytes. */
  blob(field: string, v: Buffer): void {
    if (!Buffer.isBuffer(v)) throw bad(field, 'is not a Buffer');
    this.u32(field, v.length);
    const at = this.room(v.length);
    v.copy(this.buf, at);
  }

  /** u32 byte length, then UTF-8. */
  str(field: string, v: string): void {
    if (typeof v !== 'string') throw bad(field, `${String(v)} is not a string`);
    if (LONE_SURROGATE.test(v)) throw bad(field, 'contains a lone UTF-16 surrogate (not valid UTF-8)');
    const n = Buffer.byteLength(v, 'utf8');
    this.u32(field, n);
    const at = this.room(n);
    this.buf.write(v, at, n, 'utf8');
  }
}

/**
 * A record payload left in the image file (a large record): the reader reads
 * it through a window, and leaves large contents there (StoredBytes).
 */
export interface PayloadSpan {
  readonly image: string;
  /** File offset of the payload's first byte. */
  readonly offset: number;
  readonly length: number;
  /** `n` bytes at payload offset `at`, in a fresh buffer. */
  read(at: number, n: number): Buffer;
  /** The byte ranges left in the file; their hashes are set when the span is hashed. */
  readonly stored: StoredBytes[];
}

/** How much of a span is read at a time for its small fields. */
const WINDOW_BYTES = 64 * 1024;

/** Reads one record payload; every read names its field and checks bounds first. */
export class ByteReader {
  private at = 0;
  /** The payload, or the window of a span read last. */
  private buf: Buffer;
  /** Payload offset of buf[0]. */
  private base = 0;
  private readonly total: number;

  constructor(private readonly src: Buffer | PayloadSpan) {
    this.buf = Buffer.isBuffer(src) ? src : Buffer.alloc(0);
    this.total = src.length;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.total - this.at;
  }

  /** Index in `buf` of the next `n` bytes. */
  private take(field: string, n: number): number {
    if (n > this.remaining) throw bad(field, `needs ${n} bytes, only ${this.remaining} left in the record`);
    const at = this.at;
    this.at += n;
    if (at + n > this.base + this.buf.length) {
      // Only a span gets here: a Buffer payload is one window of all its bytes.
      this.buf = (this.src as PayloadSpan).read(at, Math.min(Math.max(n, WINDOW_BYTES), this.total - at));
      this.base = at;
    }
    return at - this.base;
  }

  u8(field: string): number {
    const at = this.take(field, 1); // first: it may move the window
    return this.buf[at]!;
  }

  u16(field: string): number {
    const at = this.take(field, 2);
    return this.buf.readUInt16LE(at);
  }

  u32(field: string): number {
    const at = this.take(field, 4);
    return this.buf.readUInt32LE(at);
  }

  i32(field: string): number {
    const at = this.take(field, 4);
    return this.buf.readInt32LE(at);
  }

  u64n(field: string): number {
    const at = this.take(field, 8);
    const hi = this.buf.readUInt32LE(at + 4);
    if (hi > MAX_SAFE_HI) throw bad(field, `${this.buf.readBigUInt64LE(at)} exceeds 2^53-1`);
    return hi * TWO_32 + this.buf.readUInt32LE(at);
  }

  i64n(field: string): number {
    const at = this.take(field, 8);
    // Exact inside the safe range; outside it, rounding cannot bring a value back in.
    const v = this.buf.readInt32LE(at + 4) * TWO_32 + this.buf.readUInt32LE(at);
    if (!Number.isSafeInteger(v)) throw bad(field, `${this.buf.readBigInt64LE(at)} is outside ±(2^53-1)`);
    return v;
  }

  u64(field: string): bigint {
    const at = this.take(field, 8);
    return this.buf.readBigUInt64LE(at);
  }

  bool(field: string): boolean {
    const v = this.u8(field);
    if (v > 1) throw bad(field, `invalid boolean byte ${v}`);
    return v === 1;
  }

  /** A u32 element count, checked against the bytes left so a huge count allocates nothing. */
  count(field: string, minElementSize: number): number {
    const n = this.u32(field);
    if (n * minElementSize > this.remaining) {
      throw bad(field, `count ${n} needs at least ${n * minElementSize} bytes, only ${this.remaining} left`);
    }
    return n;
  }

  /** Copies the bytes out, so a decoded Buffer does not pin the whole image. */
  blob(field: string): Buffer {
    const n = this.u32(field);
    const at = this.take(field, n);
    return Buffer.from(this.buf.subarray(at, at + n));
  }

  /**
   * Like blob; in a span, the bytes are not read but left in the image file
   * (StoredBytes, hashed with the span), so their size costs no memory.
   */
  contents(field: string): Buffer | StoredBytes {
    if (Buffer.isBuffer(this.src)) return this.blob(field);
    const n = this.u32(field);
    if (n > this.remaining) throw bad(field, `needs ${n} bytes, only ${this.remaining} left in the record`);
    const stored = {
      image: this.src.image,
      offset: this.src.offset + this.at,
      length: n,
      sha256: Buffer.alloc(0),
    };
    this.at += n;
    this.src.stored.push(stored);
    return stored;
  }

  str(field: string): string {
    const n = this.u32(field);
    const at = this.take(field, n);
    try {
      return utf8.decode(this.buf.subarray(at, at + n));
    } catch {
      throw bad(field, 'is not valid UTF-8');
    }
  }

  /** Every record must be consumed exactly: leftovers mean a writer and reader disagree. */
  end(): void {
    if (this.remaining !== 0)
      throw new RecordViolation(`${this.remaining} unused bytes at the end of the record`);
  }
}
