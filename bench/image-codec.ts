/**
 * Throughput of the image writer and reader on a large checkpoint: one
 * process with IMAGE_FDS fds (default 100,000) over half as many files.
 * Run: npm run bench:image-codec
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeCheckpoint, encodeCheckpoint, readImage, writeImage } from '../src/agent/image/index.js';
import { O, type Checkpoint } from '../src/agent/model.js';

const nfds = Number(process.env.IMAGE_FDS ?? '100000');

function checkpoint(): Checkpoint {
  const nfiles = Math.max(1, nfds >> 1);
  const files = Array.from({ length: nfiles }, (_, i) => ({
    objref: i + 1,
    type: 'regular' as const,
    flags: O.RDWR | O.APPEND,
    pos: i * 512,
    path: `/var/lib/app/data/segment-${i.toString().padStart(8, '0')}.log`,
    mntId: 30,
    dev: 2049,
    ino: 100000 + i,
    mode: 0o100644,
    data: { type: 'regular' as const, size: i * 1024 },
  }));
  const fds = Array.from({ length: nfds }, (_, fd) => ({
    fd,
    file: (fd % nfiles) + 1,
    cloexec: fd % 2 === 0,
  }));
  return {
    header: { node: 'bench', source: 'bench', time: 0, kernel: '6.18', tool: 'bench' },
    files,
    tables: [{ objref: nfiles + 1, fds }],
    processes: [{ pid: 1, tgid: 1, comm: 'bench', argv: ['bench'], cwd: '/', table: nfiles + 1 }],
  };
}

function time<T>(f: () => T): [T, number] {
  const start = process.hrtime.bigint();
  const v = f();
  return [v, Number(process.hrtime.bigint() - start) / 1e6];
}

async function timeAsync<T>(f: () => Promise<T>): Promise<[T, number]> {
  const start = process.hrtime.bigint();
  const v = await f();
  return [v, Number(process.hrtime.bigint() - start) / 1e6];
}

async function main(): Promise<void> {
  const cp = checkpoint();
  encodeCheckpoint(cp); // warm-up: report steady-state figures
  const [buf, encMs] = time(() => encodeCheckpoint(cp));
  const [back, decMs] = time(() => decodeCheckpoint(buf));
  const dir = await mkdtemp(join(tmpdir(), 'fdckpt-bench-'));
  const path = join(dir, 'big.fdimg');
  const [, writeMs] = await timeAsync(() => writeImage(path, cp));
  const [fromFile, readMs] = await timeAsync(() => readImage(path));
  const mb = (await stat(path)).size / 1e6;
  const rate = (ms: number): string =>
    `${ms.toFixed(0)} ms (${Math.round(nfds / (ms / 1000))} fds/s, ${(mb / (ms / 1000)).toFixed(1)} MB/s)`;
  process.stdout.write(
    [
      `image codec, ${nfds} fds over ${cp.files.length} files, image ${mb.toFixed(1)} MB`,
      `  encodeCheckpoint: ${rate(encMs)}`,
      `  decodeCheckpoint: ${rate(decMs)}`,
      `  writeImage (temp file, fsync, rename): ${rate(writeMs)}`,
      `  readImage: ${rate(readMs)}`,
    ].join('\n') + '\n',
  );
  await rm(dir, { recursive: true, force: true });
  if (back.tables[0]!.fds.length !== nfds || fromFile.files.length !== cp.files.length) {
    throw new Error('the image did not round-trip');
  }
}

await main();
