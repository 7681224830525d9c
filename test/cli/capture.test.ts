/** The `fdckpt capture` contract: exit codes, one-line reasons, the image it writes. */
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { readImage } from '../../src/agent/image/index.js';
import { fdckpt } from '../support/cli.js';
import { fdOf } from '../support/fixture.js';
import { useFixtures } from '../support/use-fixtures.js';
import { killAll, startPython } from '../support/cgtest.js';

const bin = fileURLToPath(new URL('../../bin/fdckpt.js', import.meta.url));

const fixture = useFixtures();

describe('fdckpt capture', () => {
  test('writes an image that reads back with the same table', async () => {
    const fx = await fixture('files', 'pipes', 'eventfd', 'epoll');
    const out = join(fx.dir, 'out.fdimg');
    const r = fdckpt('capture', '--pid', String(fx.pid), '--output', out);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /^captured 1 process\(es\), \d+ fds, \d+ open files in [\d.]+ ms \(frozen [\d.]+ ms\) -> .*out\.fdimg \(\d+ bytes\)\n$/,
    );
    const cp = await readImage(out);
    expect(cp.processes[0]!.pid).toBe(fx.pid);
    const fds = cp.tables[0]!.fds.map((e) => e.fd);
    expect(fds).toEqual(expect.arrayContaining([fdOf(fx, 'a'), 900, fdOf(fx, 'epoll'), fdOf(fx, 'eventfd')]));
  });

  test('refuses unrestorable fds with a one-line reason naming each, exit 3, and writes nothing', async () => {
    const fx = await fixture('sockets', 'unlinked', 'flock');
    const out = join(fx.dir, 'out.fdimg');
    const r = fdckpt('capture', '--pid', String(fx.pid), '--output', out);
    expect(r.status).toBe(3);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    // The unlinked and the locked file; the listening socket and the socketpair are restorable.
    expect(r.stderr).toMatch(/^fdckpt capture: 2 fds cannot be checkpointed: /);
    expect(r.stderr).not.toContain(`fd ${fdOf(fx, 'listener')} (`);
    expect(r.stderr).not.toContain(`fd ${fdOf(fx, 'sock_a')} (`);
    expect(r.stderr).toContain(`pid ${fx.pid} fd ${fdOf(fx, 'locked')} (`);
    expect(r.stderr).toContain(
      `pid ${fx.pid} fd ${fdOf(fx, 'unlinked')} (${fx.dir}/gone.txt (deleted)): the file was unlinked`,
    );
    expect(existsSync(out)).toBe(false);

    const ok = fdckpt(
      'capture',
      '--pid',
      String(fx.pid),
      '--output',
      out,
      '--ignore-type',
      'socket',
      '--ignore-fd',
      `${fx.pid}:${fdOf(fx, 'unlinked')}`,
      '--ignore-fd',
      `${fx.pid}:${fdOf(fx, 'locked')}`,
    );
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toContain('(5 ignored)');
    const cp = await readImage(out);
    expect(
      cp.files
        .filter((f) => f.ignored)
        .map((f) => f.ignored!.reason)
        .sort(),
    ).toEqual(['fd', 'fd', 'type', 'type', 'type']);
  });

  test('usage errors exit 2; a vanished pid exits 1 naming it', async () => {
    expect(fdckpt('capture', '--output', '/tmp/x').status).toBe(2);
    const bad = fdckpt('capture', '--pid', '1', '--output', '/tmp/x', '--ignore-type', 'sockets');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(
      /^fdckpt capture: --ignore-type sockets: not a file type \(regular, directory/,
    );
    expect(fdckpt('capture', '--pid', 'abc', '--output', '/tmp/x').stderr).toContain(
      '--pid must be a non-negative integer',
    );
    const fx = await fixture('files');
    const pid = fx.pid;
    await fx.stop();
    const gone = fdckpt('capture', '--pid', String(pid), '--output', '/tmp/never.fdimg');
    expect(gone.status).toBe(1);
    expect(gone.stderr).toMatch(new RegExp(`^fdckpt capture: pid ${pid} exited during capture`));
  });
});

describe('fdckpt inspect', () => {
  test('--json has exactly the documented shape; the table names flags and sharing', async () => {
    const fx = await fixture('files', 'pipes');
    const out = join(fx.dir, 'out.fdimg');
    expect(fdckpt('capture', '--pid', String(fx.pid), '--output', out).status).toBe(0);
    const r = fdckpt('inspect', out, '--json');
    expect(r.status).toBe(0);
    const json = JSON.parse(r.stdout) as {
      version: number;
      processes: {
        pid: number;
        comm: string;
        argv: string[];
        fds: { fd: number; file: number; cloexec: boolean }[];
      }[];
      files: { objref: number; type: string; flags: number; pos: number; path: string }[];
    };
    expect(json.version).toBe(4);
    const proc = json.processes[0]!;
    expect(proc).toMatchObject({ pid: fx.pid, comm: 'python3' });
    const fdC = proc.fds.find((e) => e.fd === fdOf(fx, 'c'))!;
    expect(proc.fds.find((e) => e.fd === 900)).toEqual({ fd: 900, file: fdC.file, cloexec: false });
    const fileC = json.files.find((f) => f.objref === fdC.file)!;
    // O_RDWR|O_NONBLOCK|O_LARGEFILE as fdinfo shows it, without O_CLOEXEC.
    expect(fileC).toMatchObject({ type: 'regular', flags: 0o104002, pos: 333, path: `${fx.dir}/data.txt` });
    expect(json.files.find((f) => f.type === 'pipe')).toMatchObject({ pos: 0 });

    const table = fdckpt('inspect', out);
    expect(table.status).toBe(0);
    expect(table.stdout).toContain('O_RDWR|O_NONBLOCK');
    expect(table.stdout).toMatch(new RegExp(`\\b900\\b.*data\\.txt`));
  });

  test('a damaged image is one clear line and exit 1; usage exit 2', async () => {
    const fx = await fixture('files');
    const out = join(fx.dir, 'out.fdimg');
    expect(fdckpt('capture', '--pid', String(fx.pid), '--output', out).status).toBe(0);
    const bytes = readFileSync(out);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 5) ^ 0xff, bytes.length - 5);
    writeFileSync(out, bytes);
    const r = fdckpt('inspect', out);
    expect(r.status).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^fdckpt inspect: .*out\.fdimg: .*checksum/i);
    expect(fdckpt('inspect').status).toBe(2);
  });
});

describe('fdckpt capture under a low fd limit', () => {
  test('a table of more fds that need a copy than fdckpt itself may hold is captured a call at a time', async () => {
    // 6000 eventfds, each read through a pidfd_getfd copy, against an fdckpt allowed 3000 fds.
    const holder = await startPython(
      'import os, resource\nresource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))\n' +
        'keep = [os.eventfd(i) for i in range(6000)]\nready({})\nimport time; time.sleep(600)',
    );
    const dir = mkdtempSync(join(tmpdir(), 'fdckpt-cap-limit-'));
    try {
      const out = join(dir, 'out.fdimg');
      const r = spawnSync(
        'prlimit',
        [
          '--nofile=3000:3000',
          process.execPath,
          bin,
          'capture',
          '--pid',
          String(holder.pid),
          '--output',
          out,
          '--json',
        ],
        { encoding: 'utf8' },
      );
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect((JSON.parse(r.stdout) as { fds: number }).fds).toBeGreaterThanOrEqual(6000);
      const cp = await readImage(out);
      expect(cp.files.filter((f) => f.type === 'eventfd')).toHaveLength(6000);
    } finally {
      await killAll([holder]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
