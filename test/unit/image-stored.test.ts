/**
 * Large memfd contents read from an image file stay in the file (StoredBytes):
 * they are covered by the image's checksum as before, carry their own hash, are
 * written again byte for byte, and are refused once the file changed under them.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeCheckpoint, readImage, writeImage } from '../../src/agent/image/index.js';
import { isStored } from '../../src/agent/image/stored.js';
import { O, type Checkpoint, type FileData } from '../../src/agent/model.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fdckpt-stored-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const CONTENTS = Buffer.alloc(3 << 20);
for (let i = 0; i < CONTENTS.length; i++) CONTENTS[i] = (i * 7 + (i >> 16)) & 0xff;

/** Two memfds: a large one (read as a span) and a small one (read whole), then a regular file. */
function withMemfds(): Checkpoint {
  const memfd = (objref: number, contents: Buffer): Checkpoint['files'][number] => ({
    objref,
    type: 'memfd',
    flags: O.RDWR,
    pos: 0,
    path: `/memfd:m${objref} (deleted)`,
    mntId: 0,
    dev: 0,
    ino: objref,
    mode: 0o100777,
    data: { type: 'memfd', name: `m${objref}`, size: contents.length, seals: 0, contents },
  });
  const files = [memfd(1, CONTENTS), memfd(2, Buffer.from('small'))];
  return {
    header: { node: 'n', source: 's', time: 1, kernel: 'k', tool: 't' },
    processes: [{ pid: 1, tgid: 1, comm: 'c', argv: ['true'], cwd: '/', table: 9 }],
    tables: [{ objref: 9, fds: files.map((f, i) => ({ fd: 3 + i, file: f.objref, cloexec: false })) }],
    files,
  };
}

function contentsOf(cp: Checkpoint, i: number): Extract<FileData, { type: 'memfd' }>['contents'] {
  const d = cp.files[i]!.data;
  if (d.type !== 'memfd') throw new Error('not a memfd');
  return d.contents;
}

test('large contents stay in the image file, hashed, and are written again byte for byte', async () => {
  const path = join(dir, 'a.fdimg');
  await writeImage(path, withMemfds());
  const cp = await readImage(path);
  const big = contentsOf(cp, 0)!;
  expect(isStored(big)).toBe(true);
  if (!isStored(big)) return;
  expect(big.length).toBe(CONTENTS.length);
  expect(big.sha256.toString('hex')).toBe(createHash('sha256').update(CONTENTS).digest('hex'));
  const bytes = await readFile(path);
  expect(bytes.subarray(big.offset, big.offset + big.length).equals(CONTENTS)).toBe(true);
  expect(contentsOf(cp, 1)).toEqual(Buffer.from('small'));
  // Read from memory, the same image gives the bytes themselves.
  expect((contentsOf(decodeCheckpoint(bytes), 0) as Buffer).equals(CONTENTS)).toBe(true);
  const again = join(dir, 'b.fdimg');
  await writeImage(again, cp);
  expect((await readFile(again)).equals(bytes)).toBe(true);
});

test('a changed byte of large contents is a bad checksum, as any other byte', async () => {
  const path = join(dir, 'c.fdimg');
  await writeImage(path, withMemfds());
  const off = (contentsOf(await readImage(path), 0) as { offset: number }).offset + 12345;
  const fh = await open(path, 'r+');
  await fh.write(Buffer.from([CONTENTS[12345]! ^ 1]), 0, 1, off);
  await fh.close();
  await expect(readImage(path)).rejects.toThrow(/bad checksum/);
});

test('contents changed after the image was read are refused when written again', async () => {
  const path = join(dir, 'd.fdimg');
  await writeImage(path, withMemfds());
  const cp = await readImage(path);
  const big = contentsOf(cp, 0) as { offset: number };
  const fh = await open(path, 'r+');
  await fh.write(Buffer.from('x'), 0, 1, big.offset + CONTENTS.length - 1);
  await fh.close();
  await expect(writeImage(join(dir, 'e.fdimg'), cp)).rejects.toThrow(/changed since/);
  expect((await readdir(dir)).filter((f) => f.startsWith('e.fdimg'))).toEqual([]);
});
