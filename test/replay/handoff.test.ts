/**
 * Socket handoff: a real server with two listening sockets (at fds 7 and 9) is
 * captured and killed; `fdckpt restore --listen-fds` starts a program that reads
 * LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES as socket activation does, and it answers
 * on the saved ports without binding anything.
 */
import { afterEach, describe, expect, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { capture } from '../../src/agent/capture/index.js';
import { writeImage } from '../../src/agent/image/index.js';
import { main } from '../../src/cli/main.js';
import { until } from '../support/until.js';
import { PYTHON } from './support.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Two listeners on loopback at fds 7 and 9, a file at fd 5 (close-on-exec clear). */
const SERVER = `
import os, socket, sys, json, time
d = sys.argv[1]
ports = []
for fd in (7, 9):
    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(8)
    os.dup2(s.fileno(), fd, inheritable=True); ports.append(s.getsockname()[1]); s.close()
a = os.open(d + '/kept', os.O_RDONLY); os.dup2(a, 5, inheritable=True); os.close(a)
json.dump({'ports': ports}, open(d + '/ready.tmp', 'w')); os.rename(d + '/ready.tmp', d + '/ready')
time.sleep(600)
`;

/**
 * A socket-activated server (sd_listen_fds by hand): checks LISTEN_PID, takes fds
 * 3..3+N-1, answers one connection on each with its name and port, then exits.
 */
const ACTIVATED = `
import os, socket, sys
assert os.environ['LISTEN_PID'] == str(os.getpid()), (os.environ.get('LISTEN_PID'), os.getpid())
n = int(os.environ['LISTEN_FDS'])
names = os.environ['LISTEN_FDNAMES'].split(':')
assert n == 2 and len(names) == 2, (n, names)
socks = [socket.socket(fileno=3 + i) for i in range(n)]
for s, name in zip(socks, names):
    c, _ = s.accept()
    c.sendall(('%s %d %s\\n' % (name, s.getsockname()[1], os.readlink('/proc/self/fd/5'))).encode()); c.close()
`;
import { readToEnd } from '../support/tcp.js';

const ask = readToEnd;

describe('fdckpt restore --listen-fds', () => {
  test('hands the saved listeners over at fds 3… with LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replay-handoff-'));
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, 'kept'), 'kept');
    const child = spawn(PYTHON, ['-c', SERVER, dir], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(child);
    const ready = path.join(dir, 'ready');
    await until('the server is ready', () => Promise.resolve(fs.existsSync(ready) || undefined));
    const { ports } = JSON.parse(fs.readFileSync(ready, 'utf8')) as { ports: number[] };
    const image = path.join(dir, 'img.fdimg');
    await writeImage(image, capture([child.pid!]).checkpoint);
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;

    expect(await main(['restore', '--dry-run', '--listen-fds', '--image', image])).toBe(0);
    const restored = main(['restore', '--listen-fds', '--image', image, '--', PYTHON, '-c', ACTIVATED]);
    // The accept queues exist from the restore on: a connect before accept() waits there.
    const answers = await Promise.all(ports.map((p) => until(`port ${p}`, () => ask(p))));
    expect(answers).toEqual([`fd7 ${ports[0]} ${dir}/kept\n`, `fd9 ${ports[1]} ${dir}/kept\n`]);
    expect(await restored).toBe(0);
  });
});
