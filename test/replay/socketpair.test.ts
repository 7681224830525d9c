/**
 * Unix socketpairs with both ends in the table are recreated (socketpair(2)), and
 * F_SETOWN owners restored with the owner mapped to the restored process, its
 * F_SETSIG signal kept (CRIU's fown). What stays refused is reported in one pass.
 */
import { afterEach, describe, expect, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { capture } from '../../src/agent/capture/index.js';
import { readImage, writeImage } from '../../src/agent/image/index.js';
import { restore, type Restored } from '../../src/agent/replay/index.js';
import { until } from '../support/until.js';
import { PYTHON, runRestoredPython } from './support.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
const started: Restored[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }
  for (const r of started.splice(0)) {
    r.waiter.kill('SIGKILL');
    await r.exit.catch(() => undefined);
  }
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Runs a python setup that writes DIR/ready when its fds are in place; returns its pid. */
async function holder(setup: string): Promise<{ pid: number; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replay-pair-'));
  dirs.push(dir);
  const script = `import os, socket, fcntl, sys, time\nd = sys.argv[1]\n${setup}\nopen(d + '/ready', 'w').close()\ntime.sleep(600)\n`;
  // stdio ignored: a jest worker's stderr is a socketpair to jest, whose peer is not captured.
  const child = spawn(PYTHON, ['-c', script, dir], { stdio: 'ignore' });
  children.push(child);
  await until('the holder is ready', () => Promise.resolve(fs.existsSync(`${dir}/ready`) || undefined));
  return { pid: child.pid!, dir };
}

describe('socketpairs and F_SETOWN owners', () => {
  test('a socketpair with owners comes back connected, owned by the restored process, same signal', async () => {
    const { pid, dir } = await holder(
      [
        'a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)',
        'os.dup2(a.fileno(), 5); os.dup2(b.fileno(), 6); a.close(); b.close()',
        'fcntl.fcntl(5, fcntl.F_SETOWN, os.getpid()); fcntl.fcntl(5, 10, 40)  # F_SETSIG',
        'fcntl.fcntl(6, fcntl.F_SETFL, os.O_NONBLOCK)',
      ].join('\n'),
    );
    const captured = capture([pid]);
    expect(captured.problems).toEqual([]);
    // Through the image: the owner (record type 7) and the peers survive it.
    await writeImage(`${dir}/img`, captured.checkpoint);
    const checkpoint = await readImage(`${dir}/img`);
    expect(checkpoint.files.filter((f) => f.owner)).toEqual([
      expect.objectContaining({ owner: { kind: 'pid', id: pid, signal: 40 } }),
    ]);
    const report = (await runRestoredPython(
      checkpoint,
      [
        'import os, socket, fcntl, sys, json',
        'a = socket.socket(fileno=5); b = socket.socket(fileno=6)',
        "a.send(b'ping'); got = b.recv(16).decode(); b.send(b'pong'); back = a.recv(16).decode()",
        'r = {"got": got, "back": back, "type": a.type == socket.SOCK_SEQPACKET,',
        '     "owner": fcntl.fcntl(5, fcntl.F_GETOWN) == os.getpid(), "sig": fcntl.fcntl(5, 11),',
        '     "owner6": fcntl.fcntl(6, fcntl.F_GETOWN), "nonblock": bool(fcntl.fcntl(6, fcntl.F_GETFL) & os.O_NONBLOCK)}',
        "json.dump(r, open(sys.argv[1], 'w'))",
      ],
      dir,
      started,
    )) as Record<string, unknown>;
    expect(report).toEqual({
      got: 'ping',
      back: 'pong',
      type: true,
      owner: true,
      sig: 40,
      owner6: 0,
      nonblock: true,
    });
  });

  test('capture reports every refused fd in one pass: bytes queued, an owner outside, a peer outside', async () => {
    const outside = await holder('');
    const { pid } = await holder(
      [
        'a, b = socket.socketpair()',
        "os.dup2(a.fileno(), 20); os.dup2(b.fileno(), 21); a.close(); b.close(); os.write(20, b'queued')",
        // a pair whose other end only a child (not captured) holds, as nginx's workers do
        'x, y = socket.socketpair()',
        'kid = os.fork()\nif kid == 0:\n    time.sleep(600); os._exit(0)',
        "open(d + '/kid', 'w').write(str(kid))",
        'os.dup2(x.fileno(), 22); x.close(); y.close()',
        'u, v = socket.socketpair()',
        `os.dup2(u.fileno(), 23); os.dup2(v.fileno(), 24); u.close(); v.close(); fcntl.fcntl(23, fcntl.F_SETOWN, ${outside.pid})`,
      ].join('\n'),
    );
    const kid = Number(fs.readFileSync(`${dirs.at(-1)}/kid`, 'utf8'));
    let problems;
    try {
      problems = capture([pid]).problems;
    } finally {
      process.kill(kid, 'SIGKILL');
    }
    const byFd = Object.fromEntries(
      problems.map((p) => [p.fd, p.message.replace(/^pid \d+ fd \d+ \(socket:\[\d+\]\): /, '')]),
    );
    expect(byFd).toEqual({
      21: 'a connected unix socket with 6 bytes queued (not copied)',
      22: expect.stringMatching(
        /^a connected unix socket whose peer socket:\[\d+\] is not in the captured processes$/,
      ),
      23: `has an owner for SIGIO/SIGURG (pid ${outside.pid}, set by F_SETOWN) that is not captured`,
    });
  });

  test("restore refuses a pair end whose peer is in another process's table, naming the peer", async () => {
    const { pid: parent, dir } = await holder(
      [
        'a, b = socket.socketpair()',
        'pid = os.fork()\nif pid == 0:\n    a.close(); os.dup2(b.fileno(), 5); b.close(); time.sleep(600)',
        "b.close(); os.dup2(a.fileno(), 5); a.close(); open(d + '/child', 'w').write(str(pid))",
      ].join('\n'),
    );
    const child = Number(fs.readFileSync(`${dir}/child`, 'utf8'));
    try {
      const { checkpoint, problems } = capture([parent, child]);
      expect(problems).toEqual([]);
      await expect(restore(checkpoint, ['true'], { stdio: 'ignore', pid: parent })).rejects.toThrow(
        /^fd 5 \(socket:\[\d+\]\): a connected unix socket whose peer socket:\[\d+\] is not in this table/,
      );
    } finally {
      process.kill(child, 'SIGKILL');
    }
  });
});
