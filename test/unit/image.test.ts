/** Round trips of the checkpoint image, in memory and through files. */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeCheckpoint,
  encodeCheckpoint,
  FORMAT_VERSION,
  ImageDigestError,
  ImageFormatError,
  imageChunks,
  readImage,
  writeImage,
} from '../../src/agent/image/index.js';
import fc from 'fast-check';
import { FILE_TYPES, type Checkpoint } from '../../src/agent/model.js';
import { richCheckpoint, tamperedImage } from '../support/image-fixtures.js';
import { byteMutated, recordMutated } from '../support/image-fuzz.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fdckpt-image-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A checkpoint of one process with `n` fds over n/2 files: an image well over one 64 KiB chunk. */
function bigCheckpoint(n: number): Checkpoint {
  const cp = richCheckpoint();
  const base = 1000;
  const files = Array.from({ length: n / 2 }, (_, i) => ({
    ...cp.files[0]!,
    objref: base + i,
    path: `/data/file-${i}.bin`,
    pos: i * 4096,
  }));
  const fds = Array.from({ length: n }, (_, fd) => ({
    fd,
    file: base + (fd % (n / 2)),
    cloexec: fd % 3 === 0,
  }));
  return {
    header: cp.header,
    files,
    tables: [{ objref: base + n, fds }],
    processes: [{ ...cp.processes[0]!, table: base + n }],
  };
}

describe('in memory', () => {
  test('the rich checkpoint covers every file type', () => {
    const types = new Set(richCheckpoint().files.map((f) => f.type));
    expect([...types].sort()).toEqual([...FILE_TYPES].sort());
  });

  test('a checkpoint with every file type round-trips exactly', () => {
    const buf = encodeCheckpoint(richCheckpoint());
    expect(buf.subarray(0, 8).toString('latin1')).toBe('FDCKPT\r\n');
    expect(buf.readUInt32LE(8)).toBe(FORMAT_VERSION);
    expect(decodeCheckpoint(buf)).toStrictEqual(richCheckpoint());
  });

  test('decoded buffers are copies, not views of the image', () => {
    const buf = encodeCheckpoint(richCheckpoint());
    const cp = decodeCheckpoint(buf);
    buf.fill(0);
    const pipe = cp.files.find((f) => f.data.type === 'pipe' && f.data.buffered !== undefined)!;
    expect(pipe.data).toMatchObject({ buffered: Buffer.from('hello') });
  });

  test('an empty checkpoint round-trips', () => {
    const cp: Checkpoint = { header: richCheckpoint().header, processes: [], tables: [], files: [] };
    expect(decodeCheckpoint(encodeCheckpoint(cp))).toStrictEqual(cp);
  });

  test('extreme values round-trip', () => {
    const cp = richCheckpoint();
    cp.header.time = Number.MIN_SAFE_INTEGER;
    const f = cp.files[0]!;
    Object.assign(f, {
      pos: Number.MAX_SAFE_INTEGER,
      dev: 2 ** 32,
      ino: 2 ** 32 - 1,
      mntId: -1,
      mode: 0xffff_ffff,
    });
    f.data = { type: 'regular', size: 2 ** 52 + 1 };
    cp.processes[0]!.pid = 0x7fff_ffff;
    expect(decodeCheckpoint(encodeCheckpoint(cp))).toStrictEqual(cp);
    cp.header.time = -1;
    expect(decodeCheckpoint(encodeCheckpoint(cp)).header.time).toBe(-1);
  });

  test('an i64 time beyond 2^53 is rejected', () => {
    const buf = encodeCheckpoint(richCheckpoint());
    // header record at 12: node "node-a" (4+6), source "default/web-0" (4+13), then time.
    const at = 12 + 8 + 10 + 17;
    buf.writeBigInt64LE(-(1n << 60n), at);
    expect(() => decodeCheckpoint(buf)).toThrow(
      'image: record 1 (header) at byte 12: field time: -1152921504606846976 is outside ±(2^53-1)',
    );
  });

  test('encoding is deterministic', () => {
    expect(encodeCheckpoint(richCheckpoint()).equals(encodeCheckpoint(richCheckpoint()))).toBe(true);
  });

  test('a large checkpoint is produced in bounded chunks', () => {
    const chunks = [...imageChunks(bigCheckpoint(20000))];
    expect(chunks.length).toBeGreaterThan(4);
    for (const c of chunks) expect(c.length).toBeLessThan(128 * 1024);
  });

  test('the image names its source in errors', () => {
    const buf = encodeCheckpoint(richCheckpoint()).subarray(0, 100);
    expect(() => decodeCheckpoint(buf, 'web-0.fdimg')).toThrow(
      /^web-0\.fdimg: record 2 \(file\) at byte 82: /,
    );
  });
});

describe('files', () => {
  test('writeImage then readImage round-trips, leaving no temporary file', async () => {
    const path = join(dir, 'rich.fdimg');
    const written = await writeImage(path, richCheckpoint());
    expect(await readImage(path)).toStrictEqual(richCheckpoint());
    expect(await readdir(dir)).toEqual(['rich.fdimg']);
    const bytes = await readFile(path);
    expect(bytes.equals(encodeCheckpoint(richCheckpoint()))).toBe(true);
    // What the agent records in status.image, without reading the file back.
    expect(written).toEqual({ size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
  });

  test('a large image streams through the chunked reader', async () => {
    const path = join(dir, 'big.fdimg');
    const cp = bigCheckpoint(20000);
    await writeImage(path, cp);
    expect(await readImage(path)).toStrictEqual(cp);
    await rm(path);
  });

  test('readImage with expectSha256 refuses another image, well-formed or not, naming both digests', async () => {
    const path = join(dir, 'expect.fdimg');
    const cp = bigCheckpoint(2000);
    const { sha256 } = await writeImage(path, cp);
    expect(await readImage(path, { expectSha256: sha256 })).toStrictEqual(cp);
    const good = await readFile(path);
    // One byte of a path in the middle changed, the trailer made right: only the digest tells.
    const bad = tamperedImage(good, '/data/file-');
    await writeFile(path, bad);
    expect(await readImage(path)).not.toStrictEqual(cp);
    const actual = createHash('sha256').update(bad).digest('hex');
    const err = await readImage(path, { expectSha256: sha256 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDigestError);
    expect((err as Error).message).toBe(
      `${path}: sha256 ${actual}, expected ${sha256}: not the image asked for`,
    );
    // Malformed as well (the trailer left as it was): still the digest, not the checksum, is named.
    const broken = Buffer.from(good);
    broken[broken.length >> 1] = broken[broken.length >> 1]! ^ 0x01;
    await writeFile(path, broken);
    await expect(readImage(path)).rejects.toThrow(ImageFormatError);
    await expect(readImage(path, { expectSha256: sha256 })).rejects.toThrow(
      `${path}: sha256 ${createHash('sha256').update(broken).digest('hex')}, expected ${sha256}`,
    );
    await rm(path);
  });

  test('a checkpoint the writer refuses leaves the old image and no temporary file', async () => {
    const path = join(dir, 'keep.fdimg');
    await writeFile(path, 'old');
    const cp = bigCheckpoint(20000);
    cp.tables[0]!.fds[19999]!.fd = -1; // fails after several chunks were written
    await expect(writeImage(path, cp)).rejects.toThrow(
      new RegExp(`^${path.replace(/[.]/g, '\\.')}: record \\d+ \\(fd\\) at byte \\d+: fd -1 is negative$`),
    );
    expect(await readFile(path, 'utf8')).toBe('old');
    expect((await readdir(dir)).filter((f) => f.startsWith('keep'))).toEqual(['keep.fdimg']);
    await rm(path);
  });

  test('readImage rejects a truncated file with its path, offset and record', async () => {
    const path = join(dir, 'cut.fdimg');
    await writeFile(path, encodeCheckpoint(richCheckpoint()).subarray(0, 200));
    const err = await readImage(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageFormatError);
    expect((err as Error).message).toMatch(
      new RegExp(`^${path}: record \\d+ \\(\\w+\\) at byte \\d+: truncated: length`),
    );
  });

  test('readImage of a huge declared length reads nothing more', async () => {
    const path = join(dir, 'huge.fdimg');
    const buf = encodeCheckpoint(richCheckpoint());
    buf.writeUInt32LE(0xffff_fff0, 12 + 4);
    await writeFile(path, buf);
    await expect(readImage(path)).rejects.toThrow(
      `${path}: record 1 (header) at byte 12: truncated: length 4294967280 runs past the end of the image`,
    );
  });

  test('readImage and decodeCheckpoint agree on damaged images (300 cases)', async () => {
    const path = join(dir, 'damaged.fdimg');
    const outcome = (f: () => Checkpoint): unknown => {
      try {
        return f();
      } catch (err) {
        return (err as Error).message.replace(/^[^:]*: /, 'SOURCE: ');
      }
    };
    const inputs = fc.sample(fc.oneof(byteMutated, recordMutated), { numRuns: 300, seed: 42 });
    for (const buf of inputs) {
      await writeFile(path, buf);
      const fromFile = await readImage(path).then(
        (cp) => cp,
        (err: Error) => err.message.replace(/^[^:]*: /, 'SOURCE: '),
      );
      expect(fromFile).toStrictEqual(outcome(() => decodeCheckpoint(buf)));
    }
    await rm(path);
  });
});
