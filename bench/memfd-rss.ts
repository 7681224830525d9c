/**
 * bench/memfd-rss: peak RSS of `fdckpt restore` and `fdckpt capture` for one
 * large memfd. Restore: an image holding a memfd of N MiB (a known pattern) is
 * written directly (the capture limit does not apply to a written image), then
 * `fdckpt restore` replays it into python3, which hashes what it got. Capture:
 * a python3 process holding a memfd of the capture limit's size is captured.
 * Peak RSS is /usr/bin/time -v's "Maximum resident set size" of the CLI (the
 * restored program itself maps nothing and stays small).
 * Run: npm run bench:memfd-rss [MiB ...] (default 64 256)
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MEMFD_CONTENTS_LIMIT } from '../src/agent/filetypes/memfd.js';
import { writeImage } from '../src/agent/image/index.js';
import { O, type Checkpoint } from '../src/agent/model.js';

const CLI = path.resolve('bin/fdckpt.js');
const MIB = 1 << 20;

/** N MiB of a pattern that is not all one byte (so a short or shifted copy hashes differently). */
function pattern(bytes: number): Buffer {
  const block = Buffer.alloc(MIB);
  for (let i = 0; i < MIB; i++) block[i] = (i * 31 + (i >> 12)) & 0xff;
  const out = Buffer.allocUnsafe(bytes);
  for (let at = 0; at < bytes; at += MIB) block.copy(out, at, 0, Math.min(MIB, bytes - at));
  return out;
}

function imageWithMemfd(contents: Buffer): Checkpoint {
  return {
    header: { node: os.hostname(), source: 'bench', time: Date.now(), kernel: os.release(), tool: 'bench' },
    processes: [{ pid: 1, tgid: 1, comm: 'bench', argv: ['true'], cwd: '/', table: 2 }],
    tables: [{ objref: 2, fds: [{ fd: 3, file: 1, cloexec: false }] }],
    files: [
      {
        objref: 1,
        type: 'memfd',
        flags: O.RDWR,
        pos: 0,
        path: '/memfd:bench (deleted)',
        mntId: 0,
        dev: 0,
        ino: 1,
        mode: 0o100777,
        data: { type: 'memfd', name: 'bench', size: contents.length, seals: 0, contents },
      },
    ],
  };
}

/** Runs `argv` under /usr/bin/time -v: its stdout and peak RSS in MB. */
function timed(argv: string[], env: NodeJS.ProcessEnv = process.env): { maxRssMb: number } {
  const r = spawnSync('/usr/bin/time', ['-v', ...argv], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status}: ${r.stderr}`);
  const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1]);
  return { maxRssMb: (kb * 1024) / 1e6 };
}

const HASH_FD3 = [
  'import hashlib, os',
  'h = hashlib.sha256()',
  'while True:',
  '    b = os.read(3, 1 << 20)',
  '    if not b: break',
  '    h.update(b)',
  // fds 0-2 are not in the image's table: the result goes to a file.
  "open(os.environ['OUT'], 'w').write(h.hexdigest())",
].join('\n');

async function restoreRow(dir: string, mib: number): Promise<string> {
  const contents = pattern(mib * MIB);
  const want = createHash('sha256').update(contents).digest('hex');
  const image = path.join(dir, `memfd-${mib}.fdimg`);
  await writeImage(image, imageWithMemfd(contents));
  const out = path.join(dir, 'hash');
  const argv = ['node', CLI, 'restore', '--image', image, '--', 'python3', '-c', HASH_FD3];
  const { maxRssMb } = timed(argv, { ...process.env, OUT: out });
  const got = fs.readFileSync(out, 'utf8');
  const same = got === want ? 'equal' : `DIFFERENT (${got})`;
  fs.rmSync(image);
  return `| restore | ${mib} MiB | ${maxRssMb.toFixed(0)} MB | ${same} |`;
}

async function captureRow(dir: string): Promise<string> {
  const mib = MEMFD_CONTENTS_LIMIT / MIB;
  const ready = path.join(dir, 'ready');
  const script = [
    'import os, sys, time',
    'm = os.memfd_create("bench", 0)',
    'b = bytes(range(256)) * 4096',
    `for _ in range(${mib}): os.write(m, b)`,
    'open(sys.argv[1], "w").close()',
    'time.sleep(600)',
  ].join('\n');
  // No stdio: the holder's table is its memfd only (Node's pipes are sockets with outside peers).
  const holder = spawn('python3', ['-c', script, ready], { stdio: 'ignore' });
  try {
    while (!fs.existsSync(ready)) await new Promise((r) => setTimeout(r, 50));
    const image = path.join(dir, 'capture.fdimg');
    const { maxRssMb } = timed(['node', CLI, 'capture', '--pid', String(holder.pid), '--output', image]);
    const size = fs.statSync(image).size;
    fs.rmSync(image);
    return `| capture | ${mib} MiB | ${maxRssMb.toFixed(0)} MB | image ${(size / 1e6).toFixed(1)} MB |`;
  } finally {
    holder.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const sizes = process.argv.slice(2).map(Number);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdckpt-memfd-rss-'));
  try {
    const when = new Date().toISOString().replace('T', ' ').slice(0, 16);
    console.log(`${when} UTC, ${execFileSync('uptime', { encoding: 'utf8' }).trim()}`);
    console.log('| command | memfd | peak RSS of the CLI | contents |');
    console.log('|---|---:|---:|---|');
    for (const mib of sizes.length > 0 ? sizes : [64, 256]) console.log(await restoreRow(dir, mib));
    console.log(await captureRow(dir));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
