/**
 * The image fuzzer, shared by the CI test (test/unit/image-fuzz.test.ts) and
 * the long run (bench/fuzz-image.ts). Inputs are valid images damaged at the
 * byte level (flips, overwrites, cuts, insertions) or at the record level
 * (records dropped, duplicated, swapped, retyped, resized, then resealed with
 * a correct checksum so the semantic rules are reached), and plain random
 * bytes. The oracle: decoding yields a Checkpoint whose re-encoding is
 * byte-identical to the input, or throws ImageFormatError; anything else
 * (another exception, a hang) is a bug.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { decodeCheckpoint, encodeCheckpoint, ImageFormatError } from '../../src/agent/image/index.js';
import { MAGIC, RECORD } from '../../src/agent/image/format.js';
import { arbCheckpoint } from './image-fixtures.js';

export type Outcome = 'decoded' | 'rejected';

/** Runs the oracle on one input. Throws (failing the property) on anything but the two allowed outcomes. */
export function checkImage(buf: Buffer): Outcome {
  let cp;
  try {
    cp = decodeCheckpoint(buf, 'fuzz');
  } catch (err) {
    if (err instanceof ImageFormatError && err.message.startsWith('fuzz: ')) return 'rejected';
    throw err;
  }
  if (!encodeCheckpoint(cp).equals(buf))
    throw new Error('decoded image does not re-encode to the same bytes');
  return 'decoded';
}

type ByteMutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'u32'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; len: number };

const anyU32 = fc.oneof(
  fc.nat({ max: 0xffff_ffff }),
  fc.constantFrom(0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, ...Object.values(RECORD)),
);

const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.nat({ max: 255 }) }),
  fc.record({ op: fc.constant('u32' as const), at: fc.nat(), value: anyU32 }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }),
);

function applyByte(buf: Buffer, m: ByteMutation): Buffer {
  if (buf.length === 0) return buf;
  const at = m.at % buf.length;
  switch (m.op) {
    case 'flip':
      buf[at] = buf[at]! ^ (1 << m.bit);
      return buf;
    case 'set':
      buf[at] = m.value;
      return buf;
    case 'u32':
      if (at + 4 <= buf.length) buf.writeUInt32LE(m.value, at);
      return buf;
    case 'truncate':
      return buf.subarray(0, at);
    case 'insert':
      return Buffer.concat([buf.subarray(0, at), m.bytes, buf.subarray(at)]);
    case 'delete':
      return Buffer.concat([buf.subarray(0, at), buf.subarray(at + m.len)]);
  }
}

/** The records of a valid image (between preamble and trailer), each with its header. */
function splitRecords(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 12; at < buf.length - 40;) {
    const end = at + 8 + buf.readUInt32LE(at + 4);
    out.push(Buffer.from(buf.subarray(at, end)));
    at = end;
  }
  return out;
}

/** Preamble + records + a trailer whose digest is correct for them. */
function seal(preamble: Buffer, records: Buffer[]): Buffer {
  const body = Buffer.concat([preamble, ...records]);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(RECORD.trailer, 0);
  head.writeUInt32LE(32, 4);
  return Buffer.concat([body, head, createHash('sha256').update(body).digest()]);
}

type RecordMutation =
  | { op: 'drop'; i: number }
  | { op: 'dup'; i: number; to: number }
  | { op: 'swap'; i: number; j: number }
  | { op: 'retype'; i: number; type: number }
  | { op: 'resize'; i: number; delta: number }
  | { op: 'bytes'; i: number; m: ByteMutation };

const recordMutation: fc.Arbitrary<RecordMutation> = fc.oneof(
  fc.record({ op: fc.constant('drop' as const), i: fc.nat() }),
  fc.record({ op: fc.constant('dup' as const), i: fc.nat(), to: fc.nat() }),
  fc.record({ op: fc.constant('swap' as const), i: fc.nat(), j: fc.nat() }),
  fc.record({ op: fc.constant('retype' as const), i: fc.nat(), type: fc.nat({ max: 8 }) }),
  fc.record({ op: fc.constant('resize' as const), i: fc.nat(), delta: fc.integer({ min: -8, max: 8 }) }),
  fc.record({ op: fc.constant('bytes' as const), i: fc.nat(), m: byteMutation }),
);

function applyRecord(records: Buffer[], m: RecordMutation): void {
  if (records.length === 0) return;
  const i = m.i % records.length;
  const r = records[i]!;
  switch (m.op) {
    case 'drop':
      records.splice(i, 1);
      return;
    case 'dup':
      records.splice(m.to % (records.length + 1), 0, Buffer.from(r));
      return;
    case 'swap': {
      const j = m.j % records.length;
      records[i] = records[j]!;
      records[j] = r;
      return;
    }
    case 'retype':
      r.writeUInt32LE(m.type, 0);
      return;
    case 'resize': {
      // Change the payload length and the payload together, so framing stays consistent.
      const payload = r.subarray(8);
      const len = Math.max(0, payload.length + m.delta);
      const next = Buffer.alloc(8 + len);
      r.copy(next, 0, 0, 8);
      payload.copy(next, 8, 0, Math.min(len, payload.length));
      next.writeUInt32LE(len, 4);
      records[i] = next;
      return;
    }
    case 'bytes': {
      // Damage the payload only; fix up the length to whatever it became.
      const payload = applyByte(Buffer.from(r.subarray(8)), m.m);
      const next = Buffer.concat([r.subarray(0, 8), payload]);
      next.writeUInt32LE(payload.length, 4);
      records[i] = next;
      return;
    }
  }
}

/** Valid images damaged byte by byte (checksum left stale, or resealed). */
export const byteMutated: fc.Arbitrary<Buffer> = fc
  .tuple(arbCheckpoint(), fc.array(byteMutation, { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([cp, muts, reseal]) => {
    let buf: Buffer = Buffer.from(encodeCheckpoint(cp));
    for (const m of muts) buf = applyByte(buf, m);
    if (reseal && buf.length >= 52) {
      createHash('sha256')
        .update(buf.subarray(0, buf.length - 32))
        .digest()
        .copy(buf, buf.length - 32);
    }
    return buf;
  });

/** Valid images with whole records dropped, duplicated, swapped, retyped or resized, resealed. */
export const recordMutated: fc.Arbitrary<Buffer> = fc
  .tuple(arbCheckpoint(), fc.array(recordMutation, { minLength: 1, maxLength: 3 }))
  .map(([cp, muts]) => {
    const buf = encodeCheckpoint(cp);
    const records = splitRecords(buf);
    for (const m of muts) applyRecord(records, m);
    return seal(buf.subarray(0, 12), records);
  });

/** Random bytes, half of them behind a valid preamble so the record loop is reached. */
export const randomBytes: fc.Arbitrary<Buffer> = fc
  .tuple(fc.boolean(), fc.uint8Array({ maxLength: 200 }))
  .map(([pre, bytes]) => {
    const head = Buffer.from([...MAGIC, 1, 0, 0, 0]);
    return pre ? Buffer.concat([head, bytes]) : Buffer.from(bytes);
  });
