/**
 * The reader that decodes only what restoring one process needs (ReadImageOptions.only,
 * image/select.ts). Oracle: the full read, cut down here by an independent walk (the
 * process's table, the files its fds name, the files those name, the processes that
 * share the table). What it leaves unparsed is pinned too: framing, sequence, objref
 * uniqueness and the checksum are still checked everywhere; a field is checked only
 * where it is decoded.
 */
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Checkpoint, FileRecord } from '../../src/agent/model.js';
import {
  decodeCheckpoint,
  encodeCheckpoint,
  ImageFormatError,
  readImage,
} from '../../src/agent/image/index.js';
import { arbCheckpoint, regularFile, resealed, withFileFlags } from '../support/image-fixtures.js';
import { byteMutated, recordMutated } from '../support/image-fuzz.js';
import { RECORD } from '../../src/agent/image/format.js';

/** What restoring `pid` (default: the first process) needs of `cp`, by a walk of its own. */
function expectedSubset(cp: Checkpoint, pid?: number): Checkpoint {
  const proc = pid === undefined ? cp.processes[0] : cp.processes.find((p) => p.pid === pid);
  if (!proc) return { header: cp.header, processes: [], tables: [], files: [] };
  const table = cp.tables.find((t) => t.objref === proc.table)!;
  const byRef = new Map(cp.files.map((f) => [f.objref, f]));
  const need = new Set<number>();
  const visit = (objref: number): void => {
    const f = byRef.get(objref);
    if (!f || need.has(objref)) return;
    need.add(objref);
    if (f.data.type === 'eventpoll') for (const t of f.data.targets) if (t.file !== undefined) visit(t.file);
  };
  for (const fd of table.fds) visit(fd.file);
  return {
    header: cp.header,
    processes: cp.processes.filter((p) => p.table === table.objref),
    tables: [table],
    files: cp.files.filter((f) => need.has(f.objref)),
  };
}

/** Two processes with tables of their own; process 20's epoll watches a file only process 10 has open. */
function twoProcesses(): Checkpoint {
  const file = (objref: number, path: string): FileRecord => regularFile(objref, path);
  return {
    header: { node: 'n', source: 's', time: 1, kernel: 'k', tool: 't' },
    files: [
      file(1, '/a'),
      file(2, '/b'),
      {
        ...file(3, 'anon_inode:[eventpoll]'),
        type: 'eventpoll',
        mode: 0o600,
        data: { type: 'eventpoll', targets: [{ tfd: 7, events: 1, data: 0n, ino: 1, file: 1 }] },
      },
      file(4, '/c'),
    ],
    tables: [
      {
        objref: 100,
        fds: [
          { fd: 3, file: 1, cloexec: false },
          { fd: 4, file: 2, cloexec: true },
        ],
      },
      {
        objref: 200,
        fds: [
          { fd: 5, file: 3, cloexec: false },
          { fd: 6, file: 4, cloexec: false },
        ],
      },
    ],
    processes: [
      { pid: 10, tgid: 10, comm: 'a', argv: ['a'], cwd: '/', table: 100 },
      { pid: 20, tgid: 20, comm: 'b', argv: ['b'], cwd: '/', table: 200 },
      { pid: 21, tgid: 20, comm: 'b', argv: ['b'], cwd: '/', table: 200 },
    ],
  };
}

describe('reading only what one process needs', () => {
  test('random checkpoints: the subset of every process, of the default one and of an absent one (500 cases)', () => {
    fc.assert(
      fc.property(arbCheckpoint(), (cp) => {
        const image = encodeCheckpoint(cp);
        const full = decodeCheckpoint(image);
        for (const pid of [undefined, 0, ...cp.processes.map((p) => p.pid)])
          expect(decodeCheckpoint(image, 'image', { only: { pid } })).toStrictEqual(
            expectedSubset(full, pid),
          );
      }),
      { numRuns: 500 },
    );
  });

  test('damaged images: the same subset whenever the full read succeeds, else ImageFormatError (3,000 cases)', () => {
    let both = 0;
    fc.assert(
      fc.property(fc.oneof(byteMutated, recordMutated), (buf) => {
        let full: Checkpoint | undefined;
        try {
          full = decodeCheckpoint(buf, 'fuzz');
        } catch {
          // the subset read may still succeed: a broken field of a file nobody restores
        }
        let sub: Checkpoint;
        try {
          sub = decodeCheckpoint(buf, 'fuzz', { only: {} });
        } catch (err) {
          if (!(err instanceof ImageFormatError) || !err.message.startsWith('fuzz: ')) throw err;
          expect(full).toBeUndefined();
          return;
        }
        if (full) {
          both++;
          expect(sub).toStrictEqual(expectedSubset(full));
        }
      }),
      { numRuns: 3000 },
    );
    expect(both).toBeGreaterThan(0);
  });

  test("an epoll's target in another process's table comes along; shared tables bring all their processes", () => {
    const image = encodeCheckpoint(twoProcesses());
    const cp = decodeCheckpoint(image, 'image', { only: { pid: 21 } });
    expect(cp.files.map((f) => f.objref)).toEqual([1, 3, 4]);
    expect(cp.tables.map((t) => t.objref)).toEqual([200]);
    expect(cp.processes.map((p) => p.pid)).toEqual([20, 21]);
    expect(decodeCheckpoint(image, 'image', { only: {} }).files.map((f) => f.objref)).toEqual([1, 2]);
  });

  test('a broken field of a file the process does not use is left alone; of one it uses, refused as a full read refuses it', () => {
    const image = encodeCheckpoint(twoProcesses());
    // File objref 4 (/c, process 20's only) gets O_CREAT in its flags, which no capture writes.
    const bad = withFileFlags(image, 4, 0o100);
    const fullErr = (): Checkpoint => decodeCheckpoint(bad, 'bad');
    expect(fullErr).toThrow(/bad: record \d+ .*file.*creation-only O_CREAT/);
    expect(decodeCheckpoint(bad, 'bad', { only: { pid: 10 } }).files.map((f) => f.path)).toEqual([
      '/a',
      '/b',
    ]);
    let message = '';
    try {
      fullErr();
    } catch (err) {
      message = (err as Error).message;
    }
    expect(() => decodeCheckpoint(bad, 'bad', { only: { pid: 20 } })).toThrow(message);
  });

  test('framing, sequence, objref uniqueness and the checksum are checked in records it does not parse', () => {
    const image = encodeCheckpoint(twoProcesses());
    const fileAt = (objref: number): number => {
      for (let at = 12; ; at += 8 + image.readUInt32LE(at + 4))
        if (image.readUInt32LE(at) === RECORD.file && image.readInt32LE(at + 8) === objref) return at;
    };
    // A duplicate objref in process 20's files.
    const dup = Buffer.from(image);
    dup.writeInt32LE(1, fileAt(4) + 8);
    expect(() => decodeCheckpoint(resealed(dup), 'img', { only: { pid: 10 } })).toThrow(
      /img: .*duplicate objref 1/,
    );
    // The checksum, over every byte.
    const flipped = Buffer.from(image);
    flipped[fileAt(4) + 8 + 20]! ^= 1;
    expect(() => decodeCheckpoint(flipped, 'img', { only: { pid: 10 } })).toThrow(/bad checksum/);
    // A name record where a file record belongs (the sequence).
    const retyped = Buffer.from(image);
    retyped.writeUInt32LE(RECORD.name, fileAt(4));
    expect(() => decodeCheckpoint(resealed(retyped), 'img', { only: { pid: 10 } })).toThrow(
      /name record that does not follow a file record/,
    );
  });

  test('from a file: a large memfd of the restored process is hashed as it streams; one of another is skipped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fdckpt-select-'));
    try {
      const base = twoProcesses();
      const contents = Buffer.alloc(3 << 20, 7);
      const memfd = (objref: number, ino: number): FileRecord =>
        ({
          objref,
          type: 'memfd',
          flags: 2,
          pos: 0,
          path: '/memfd:big (deleted)',
          mntId: 1,
          dev: 5,
          ino,
          mode: 0o100777,
          data: { type: 'memfd', name: 'big', size: contents.length, seals: 0, contents },
        }) as unknown as FileRecord;
      const cp: Checkpoint = {
        ...base,
        files: [...base.files, memfd(5, 50), memfd(6, 60)],
        tables: [
          { objref: 100, fds: [...base.tables[0]!.fds, { fd: 9, file: 5, cloexec: false }] },
          { objref: 200, fds: [...base.tables[1]!.fds, { fd: 9, file: 6, cloexec: false }] },
        ],
      };
      const path = join(dir, 'img');
      writeFileSync(path, encodeCheckpoint(cp));
      const full = await readImage(path);
      const sub = await readImage(path, { only: { pid: 10 } });
      expect(sub.files.map((f) => f.objref)).toEqual([1, 2, 5]);
      expect(sub.files[2]).toStrictEqual(full.files.find((f) => f.objref === 5));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
