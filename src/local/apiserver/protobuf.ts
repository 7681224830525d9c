/**
 * Just enough of Kubernetes' protobuf encoding to read the one body clients send that way
 * to this JSON-only server: client-go typed clients (kubectl drain) send DeleteOptions as
 * protobuf, `kubectl create deployment` a Deployment (protobuf-apps.ts). Everything else
 * sent as protobuf is refused with 415.
 */
import { ApiError } from './errors.js';
import type { Obj } from './types.js';

/** One field of a protobuf message: a varint or length-delimited bytes. */
export type Field = { num: number; varint?: bigint; bytes?: Buffer };

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
}

/** The fields of a protobuf message, in wire order (fixed32/64 skipped). */
export function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, p1] = readVarint(buf, pos);
    pos = p1;
    const num = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [v, p2] = readVarint(buf, pos);
      out.push({ num, varint: v });
      pos = p2;
    } else if (wire === 2) {
      const [len, p2] = readVarint(buf, pos);
      const end = p2 + Number(len);
      if (end > buf.length) throw new Error('truncated field');
      out.push({ num, bytes: buf.subarray(p2, end) });
      pos = end;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

/** The `k8s\0` prefix of Kubernetes' protobuf envelope (runtime.Unknown). */
export const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** Decodes a protobuf-encoded meta/v1 DeleteOptions (in its `k8s\0` envelope) to JSON. */
export function decodeDeleteOptions(body: Buffer): Obj {
  try {
    if (!body.subarray(0, 4).equals(MAGIC)) throw new Error('missing the k8s protobuf envelope');
    const raw = fields(body.subarray(4)).find((f) => f.num === 2)?.bytes ?? Buffer.alloc(0);
    const out: Obj = {};
    const dryRun: string[] = [];
    for (const f of fields(raw)) {
      if (f.num === 1 && f.varint !== undefined)
        out['gracePeriodSeconds'] = Number(BigInt.asIntN(64, f.varint));
      if (f.num === 2 && f.bytes) {
        const pre: Obj = {};
        for (const p of fields(f.bytes)) {
          if (p.num === 1 && p.bytes) pre['uid'] = p.bytes.toString('utf8');
          if (p.num === 2 && p.bytes) pre['resourceVersion'] = p.bytes.toString('utf8');
        }
        out['preconditions'] = pre;
      }
      if (f.num === 3 && f.varint !== undefined) out['orphanDependents'] = f.varint !== 0n;
      if (f.num === 4 && f.bytes) out['propagationPolicy'] = f.bytes.toString('utf8');
      if (f.num === 5 && f.bytes) dryRun.push(f.bytes.toString('utf8'));
    }
    if (dryRun.length) out['dryRun'] = dryRun;
    return out;
  } catch (e) {
    throw new ApiError(
      400,
      'BadRequest',
      `the protobuf DeleteOptions could not be decoded: ${(e as Error).message}`,
    );
  }
}
