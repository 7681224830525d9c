/**
 * What `fdckpt restore` replays by default (docs/replay.md, "What is replayed"):
 * a real process with stdout on a file, an inherited file, a close-on-exec file
 * and its own listening socket is captured, killed, and restored with the CLI's
 * defaults into a program that binds its port again, as an unmodified server does.
 */
import { afterEach, describe, expect, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { capture } from '../../src/agent/capture/index.js';
import { writeImage } from '../../src/agent/image/index.js';
import { restore, replayPolicy } from '../../src/agent/replay/index.js';
import { main } from '../../src/cli/main.js';
import { until } from '../support/until.js';
import { PYTHON, checkpointOf, fileOf } from './support.js';
import { O } from '../../src/agent/model.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** fd 5 inherited file, fd 6 close-on-exec file, fd 7 a listening socket kept across exec (as nginx does). */
const SERVER = `
import os, socket, sys, json, time
d = sys.argv[1]
a = os.open(d + '/kept', os.O_RDONLY); os.dup2(a, 5, inheritable=True); os.close(a)
b = os.open(d + '/cloexec', os.O_RDONLY); os.dup2(b, 6, inheritable=False); os.close(b)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', 0)); s.listen(8)
os.dup2(s.fileno(), 7, inheritable=True); s.close()
port = socket.socket(fileno=os.dup(7)).getsockname()[1]
json.dump({'port': port}, open(d + '/ready.tmp', 'w')); os.rename(d + '/ready.tmp', d + '/ready')
time.sleep(600)
`;

/** The restored program: reports what it found at fds 1, 5, 6, 7 and whether it can bind its port again. */
const CHECK = `
import os, socket, sys, json
out, port = sys.argv[1], int(sys.argv[2])
def link(fd):
    try: return os.readlink('/proc/self/fd/%d' % fd)
    except OSError: return None
r = {str(fd): link(fd) for fd in (1, 5, 6, 7)}
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(('127.0.0.1', port)); s.listen(1); r['bind'] = 'ok'
except OSError as e:
    r['bind'] = e.strerror
json.dump(r, open(out, 'w'))
`;

async function capturedServer(): Promise<{ dir: string; image: string; port: number; log: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replay-default-'));
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, 'kept'), 'kept');
  fs.writeFileSync(path.join(dir, 'cloexec'), 'cloexec');
  const log = path.join(dir, 'log');
  const fd = fs.openSync(log, 'w');
  const child = spawn(PYTHON, ['-c', SERVER, dir], { stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  children.push(child);
  const ready = path.join(dir, 'ready');
  await until('the server is ready', () =>
    Promise.resolve(fs.existsSync(ready) || child.exitCode !== null || undefined),
  );
  if (child.exitCode !== null) throw new Error(`server exited: ${fs.readFileSync(log, 'utf8')}`);
  const { port } = JSON.parse(fs.readFileSync(ready, 'utf8')) as { port: number };
  const { checkpoint } = capture([child.pid!]);
  const image = path.join(dir, 'img.fdimg');
  await writeImage(image, checkpoint);
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
  return { dir, image, port, log };
}

async function restoreWith(flags: string[]): Promise<Record<string, string | null>> {
  const { dir, image, port } = await capturedServer();
  const report = path.join(dir, 'report.json');
  const code = await main([
    'restore',
    '--image',
    image,
    ...flags,
    '--',
    PYTHON,
    '-c',
    CHECK,
    report,
    String(port),
  ]);
  expect(code).toBe(0);
  return JSON.parse(fs.readFileSync(report, 'utf8')) as Record<string, string | null>;
}

describe('fdckpt restore: what is replayed', () => {
  test('by default: own stdio, inherited files; no close-on-exec fds, no listening sockets', async () => {
    const r = await restoreWith([]);
    expect(r['5']).toMatch(/\/kept$/);
    expect(r['6']).toBeNull();
    expect(r['7']).toBeNull();
    // The program binds its own port again, as redis or nginx do on start.
    expect(r['bind']).toBe('ok');
    // fd 1 is the restored process's own (the CLI's), not the dead server's log file.
    expect(r['1']).not.toMatch(/replay-default-.*\/log$/);
    expect(r['1']).toBe(fs.readlinkSync('/proc/self/fd/1'));
  });

  test('--fds all replays the whole table, stdio and the listener included', async () => {
    const r = await restoreWith(['--fds', 'all']);
    expect(r['1']).toMatch(/replay-default-.*\/log$/);
    expect(r['5']).toMatch(/\/kept$/);
    expect(r['6']).toMatch(/\/cloexec$/);
    expect(r['7']).toMatch(/^socket:/);
    expect(r['bind']).toBe('Address already in use');
  });

  test('--fds inherited replays every fd without close-on-exec, stdio and listener included', async () => {
    const r = await restoreWith(['--fds', 'inherited']);
    expect(r['1']).toMatch(/replay-default-.*\/log$/);
    expect(r['6']).toBeNull();
    expect(r['7']).toMatch(/^socket:/);
  });

  test('--fds with an unknown mode is a usage error', async () => {
    expect(await main(['restore', '--image', '/nonexistent', '--fds', 'most'])).toBe(2);
  });

  test('policy inherit on an fd the new process was not started with fails naming it', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'replay-default-'));
    dirs.push(d);
    fs.writeFileSync(path.join(d, 'f'), 'x');
    const cp = checkpointOf([
      { fd: 9, file: fileOf('regular', path.join(d, 'f'), O.RDONLY, 0, { type: 'regular', size: 1 }) },
    ]);
    const policy = replayPolicy('all', { rules: [{ fd: 9, action: 'inherit' }] });
    await expect(restore(cp, ['true'], { stdio: 'ignore', policy })).rejects.toThrow(
      /^fd 9 \(inherited fd \(policy inherit\)\): EBADF/,
    );
  });
});
