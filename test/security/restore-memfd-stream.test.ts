/**
 * Issue 12 item 23 (first half): restoring a large memfd held its contents in
 * the plan (read from the image, copied into the plan's data area, copied again
 * to be written into the target), so the restorer's peak memory grew by about
 * three times the memfd's size. A real process's 64 MiB memfd goes through the
 * CLI (capture, then restore): the restored program reads the same bytes, and
 * the restoring CLI's VmHWM stays within half the contents of the VmHWM of the
 * same restore of a 1 KiB memfd.
 */
import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PYTHON, killAll, startPython, type Started } from '../support/cgtest.js';
import { fdckpt } from '../support/cli.js';
import { readImage, writeImage } from '../../src/agent/image/index.js';
import { O, type Checkpoint, type StoredBytes } from '../../src/agent/model.js';
import { ReplayError, restore } from '../../src/agent/replay/index.js';
import { trackRestored } from '../replay/support.js';

const started: Started[] = [];
const dir = mkdtempSync(join(tmpdir(), 'fdckpt-memfd-stream-'));
afterEach(async () => {
  await killAll(started);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MIB = 1 << 20;
const restored = trackRestored();

/** One process, one memfd at fd 3 with `contents` (a Buffer, or left in an image). */
function memfdCheckpoint(contents: Buffer, extra: { pos?: number; seals?: number } = {}): Checkpoint {
  return {
    header: { node: 'n', source: 's', time: 1, kernel: 'k', tool: 't' },
    processes: [{ pid: 1, tgid: 1, comm: 'c', argv: ['true'], cwd: '/', table: 9 }],
    tables: [{ objref: 9, fds: [{ fd: 3, file: 1, cloexec: false }] }],
    files: [
      {
        objref: 1,
        type: 'memfd',
        flags: O.RDWR,
        pos: extra.pos ?? 0,
        path: '/memfd:m (deleted)',
        mntId: 0,
        dev: 0,
        ino: 1,
        mode: 0o100777,
        data: { type: 'memfd', name: 'm', size: contents.length + 4096, seals: extra.seals ?? 0, contents },
      },
    ],
  };
}

/** A process holding an inheritable memfd of `bytes` bytes of a known pattern; its fd and sha256. */
async function holder(bytes: number): Promise<{ pid: number; fd: number; sha: string }> {
  const p = await startPython(
    [
      'import hashlib, os, time',
      "m = os.memfd_create('fdckpt-stream', 0)",
      'block = bytes((i * 31 + (i >> 12)) & 0xff for i in range(1 << 20))',
      `left = ${bytes}`,
      'h = hashlib.sha256()',
      'while left > 0:',
      '    b = block[:left]',
      '    os.write(m, b)',
      '    h.update(b)',
      '    left -= len(b)',
      'os.lseek(m, 7, os.SEEK_SET)',
      "ready({'fd': m, 'sha': h.hexdigest()})",
      'time.sleep(3600)',
    ].join('\n') + '\n',
  );
  started.push(p);
  return { pid: p.pid, ...(JSON.parse(p.ready) as { fd: number; sha: string }) };
}

/** Run as the restored program: hashes the memfd, and reads the CLI's VmHWM (its grandparent). */
const RESTORED = [
  'import hashlib, json, os, sys',
  'fd = int(sys.argv[1])',
  'pos = os.lseek(fd, 0, os.SEEK_CUR)',
  'h = hashlib.sha256()',
  'at = 0',
  'while True:',
  '    b = os.pread(fd, 1 << 20, at)',
  '    if not b: break',
  '    h.update(b)',
  '    at += len(b)',
  // The launcher (fdckpt-hold) is the parent; the CLI that restored us is its parent.
  "cli = int(open(f'/proc/{os.getppid()}/stat').read().rsplit(')', 1)[1].split()[1])",
  "hwm = next(int(l.split()[1]) for l in open(f'/proc/{cli}/status') if l.startswith('VmHWM:'))",
  "cmd = open(f'/proc/{cli}/cmdline').read().split(chr(0))",
  "json.dump({'sha': h.hexdigest(), 'pos': pos, 'hwm': hwm * 1024, 'cmd': cmd}, open(sys.argv[2], 'w'))",
].join('\n');

/** Captures a holder with the CLI and restores it with the CLI into RESTORED. */
function roundTrip(h: { pid: number; fd: number }, name: string): { sha: string; pos: number; hwm: number } {
  const image = join(dir, `${name}.fdimg`);
  const out = join(dir, `${name}.json`);
  const cap = fdckpt('capture', '--pid', String(h.pid), '--output', image);
  expect(cap.stderr).toBe('');
  expect(cap.status).toBe(0);
  const res = fdckpt('restore', '--image', image, '--', PYTHON, '-c', RESTORED, String(h.fd), out);
  expect(res.stderr).toBe('');
  expect(res.status).toBe(0);
  const got = JSON.parse(readFileSync(out, 'utf8')) as {
    sha: string;
    pos: number;
    hwm: number;
    cmd: string[];
  };
  expect(got.cmd.some((a) => a.endsWith('fdckpt.js'))).toBe(true);
  expect(got.cmd).toContain('restore');
  return got;
}

test('a 64 MiB memfd is restored by the CLI with its bytes, without the restorer holding them', async () => {
  const small = await holder(1024);
  const big = await holder(64 * MIB);
  const base = roundTrip(small, 'small');
  expect(base).toMatchObject({ sha: small.sha, pos: 7 });
  const got = roundTrip(big, 'big');
  expect(got).toMatchObject({ sha: big.sha, pos: 7 });
  // Holding the contents even once would add 64 MiB; the old plan added about three times that.
  expect(got.hwm - base.hwm).toBeLessThan(32 * MIB);
}, 120_000);

test('contents changed in the image after it was checked are refused, and the target killed', async () => {
  const image = join(dir, 'changed.fdimg');
  await writeImage(image, memfdCheckpoint(Buffer.alloc(2 * MIB, 'c')));
  const cp = await readImage(image);
  const data = cp.files[0]!.data as { contents: StoredBytes };
  const fd = openSync(image, 'r+');
  writeSync(fd, Buffer.from('X'), 0, 1, data.contents.offset + MIB);
  closeSync(fd);
  const err = (await restore(cp, ['sleep', '60'], { stdio: 'ignore' }).catch(
    (e: unknown) => e,
  )) as ReplayError;
  expect(err).toBeInstanceOf(ReplayError);
  expect(err.message).toMatch(
    /^fd 3 \(\/memfd:m \(deleted\)\): writing the contents into \/proc\/\d+\/fd\/\d+: image .*: 2097152 bytes at offset \d+: sha256 [0-9a-f]{64}, [0-9a-f]{64} when the image was checked: it changed since$/,
  );
  expect(err.targetPid).toBeGreaterThan(0);
  expect(existsSync(`/proc/${err.targetPid}/status`)).toBe(false);
});

describe.each([true, false])('contents written by the agent (batched: %s)', (batch) => {
  test('from memory and from the image: bytes, size and offset come back, sealed after the write', async () => {
    const contents = Buffer.alloc(3 * MIB);
    for (let i = 0; i < contents.length; i++) contents[i] = (i * 13 + (i >> 10)) & 0xff;
    const image = join(dir, `fill-${batch}.fdimg`);
    // F_SEAL_WRITE: added after the agent's write, or that write would fail.
    await writeImage(image, memfdCheckpoint(contents, { pos: 77, seals: 0b1000 }));
    for (const cp of [memfdCheckpoint(contents, { pos: 77, seals: 0b1000 }), await readImage(image)]) {
      const r = await restore(cp, ['sleep', '60'], { stdio: 'ignore', batch });
      restored.push(r);
      const got = readFileSync(`/proc/${r.pid}/fd/3`);
      expect(got.length).toBe(contents.length + 4096);
      expect(got.subarray(0, contents.length).equals(contents)).toBe(true);
      expect(got.subarray(contents.length).equals(Buffer.alloc(4096))).toBe(true);
      expect(readFileSync(`/proc/${r.pid}/fdinfo/3`, 'utf8')).toMatch(/^pos:\s+77$/m);
    }
  });
});
