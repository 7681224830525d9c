/**
 * A program whose saved table has no fds 0–2 (a daemon that closed its stdio) is
 * restored with the default (`--fds program`) keeping its new stdio: the launcher's
 * fds 0–2 are left open, as a fresh exec would have them, not closed with the rest.
 */
import { afterEach, expect, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fdckpt } from '../support/cli.js';
import { until } from '../support/until.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

test('fds 0–2 absent from the image: the restored program keeps its own', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replay-stdio-'));
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, 'kept'), 'kept');
  // fd 5 inherited, stdio closed; then it waits.
  const child = spawn('sh', ['-c', `exec 0<&- 1>&- 2>&- 5<"${dir}/kept"; exec sleep 600`], {
    stdio: 'ignore',
  });
  children.push(child);
  const pid = child.pid!;
  await until('its stdio closed and fd 5 open', () => {
    try {
      const fds = fs.readdirSync(`/proc/${pid}/fd`).map(Number);
      const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      return Promise.resolve(comm === 'sleep' && !fds.includes(0) && fds.includes(5) ? true : undefined);
    } catch {
      return Promise.resolve(undefined);
    }
  });
  const image = path.join(dir, 'img.fdimg');
  const cap = fdckpt('capture', '--pid', String(pid), '--output', image);
  expect(cap.status).toBe(0);
  child.kill('SIGKILL');

  const r = fdckpt(
    'restore',
    '--image',
    image,
    '--',
    'sh',
    '-c',
    'echo to-stdout; echo to-stderr >&2; ls /proc/$$/fd | sort -n | tr "\\n" " "',
  );
  expect(`${r.status} ${r.stderr}`).toBe('0 to-stderr\n');
  // 0–2 its own (spawnSync's pipes), 5 replayed (ls adds its directory's fd).
  const [line, list] = r.stdout.split('\n');
  expect(line).toBe('to-stdout');
  const fds = list!.trim().split(' ').map(Number);
  expect(fds.filter((fd) => [0, 1, 2, 5].includes(fd))).toEqual([0, 1, 2, 5]);
});
