/**
 * The agent's release of a launcher it did not spawn (daemon/held.ts replayIntoHeld),
 * against the real fdckpt-hold --listen-fds: a real server's two listeners are
 * captured, the table is planned for handoff, and the held process is seized,
 * released with sigqueue(SIGUSR1, N) and replayed into at its exec. The program must
 * see exactly LISTEN_FDS=N, its own pid as LISTEN_PID and the names; released with a
 * plain SIGUSR1 it must see no LISTEN_* at all, even with stale ones in the
 * launcher's environment.
 */
import { afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { capture } from '../../src/agent/capture/index.js';
import { replayIntoHeld } from '../../src/agent/daemon/held.js';
import type { Checkpoint } from '../../src/agent/model.js';
import { DEFAULT_POLICY, handOff, planRestore, replayPolicy } from '../../src/agent/replay/index.js';
import { launchHeld, type HeldProcess } from '../../src/agent/replay/launch.js';
import { waitSettled } from '../../src/agent/replay/settle.js';
import { until } from '../support/until.js';
import { PYTHON } from './support.js';

/** Two listeners on loopback at fds 7 and 9 (close-on-exec clear). */
const SERVER = `
import os, socket, sys, time
for fd in (7, 9):
    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(8)
    os.dup2(s.fileno(), fd, inheritable=True); s.close()
open(sys.argv[1], 'w').close()
time.sleep(600)
`;

let cp: Checkpoint;
const held: HeldProcess[] = [];

beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replay-held-'));
  const ready = path.join(dir, 'ready');
  const server = spawn(PYTHON, ['-c', SERVER, ready], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await until('the server is ready', () => Promise.resolve(fs.existsSync(ready) || undefined));
    cp = capture([server.pid!]).checkpoint;
  } finally {
    const gone = new Promise((r) => server.once('exit', r));
    server.kill('SIGKILL');
    await gone;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

afterEach(async () => {
  for (const h of held.splice(0)) {
    try {
      process.kill(h.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await h.exit;
  }
});

/** The LISTEN_* variables `pid` was exec'd with. */
function listenEnv(pid: number): Record<string, string> {
  return Object.fromEntries(
    fs
      .readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter((kv) => kv.startsWith('LISTEN_'))
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

/** fdckpt-hold --listen-fds -- sleep 600, held; the environment gets `env`. */
async function launcher(env: Record<string, string> = {}): Promise<HeldProcess> {
  const h = await launchHeld(['sleep', '600'], { stdio: 'ignore', listenFds: true, env });
  held.push(h);
  return h;
}

describe('replayIntoHeld (the agent releasing a pod launcher)', () => {
  test('with a handoff: the program sees exactly LISTEN_FDS=N, LISTEN_PID, LISTEN_FDNAMES', async () => {
    const policy = replayPolicy('program', DEFAULT_POLICY, { listenFds: true });
    const handoff = handOff(cp, policy);
    expect(handoff.count).toBe(2);
    const h = await launcher({ LISTEN_FDS: '5', LISTEN_PID: '1', LISTEN_FDNAMES: 'stale' });
    replayIntoHeld(h.pid, planRestore(handoff.cp, policy), handoff);
    expect(fs.readlinkSync(`/proc/${h.pid}/exe`)).toBe(fs.realpathSync('/bin/sleep'));
    expect(listenEnv(h.pid)).toEqual({
      LISTEN_FDS: '2',
      LISTEN_PID: String(h.pid),
      LISTEN_FDNAMES: 'fd7:fd9',
    });
    for (const fd of [3, 4]) expect(fs.readlinkSync(`/proc/${h.pid}/fd/${fd}`)).toMatch(/^socket:/);
  });

  test('a count of 1 is 1: the value is the signal, not the plan', async () => {
    const policy = replayPolicy('program', DEFAULT_POLICY, { listenFds: true });
    const handoff = handOff(cp, policy);
    const h = await launcher();
    replayIntoHeld(h.pid, planRestore(handoff.cp, policy), { count: 1, names: ['only'] });
    expect(listenEnv(h.pid)).toEqual({ LISTEN_FDS: '1', LISTEN_PID: String(h.pid), LISTEN_FDNAMES: 'only' });
  });

  test('a plain SIGUSR1 (no handoff): no LISTEN_* reaches the program, stale ones are dropped', async () => {
    const policy = replayPolicy('program', DEFAULT_POLICY);
    const h = await launcher({ LISTEN_FDS: '5', LISTEN_PID: '1', LISTEN_FDNAMES: 'stale' });
    replayIntoHeld(h.pid, planRestore(cp, policy));
    expect(fs.readlinkSync(`/proc/${h.pid}/exe`)).toBe(fs.realpathSync('/bin/sleep'));
    expect(listenEnv(h.pid)).toEqual({});
    // sleep's dynamic loader opens its libraries at fd 3 for a moment after the exec.
    await waitSettled(h.pid);
    expect(fs.existsSync(`/proc/${h.pid}/fd/3`)).toBe(false);
  });

  test('a launcher without --listen-fds is refused for a handoff, and killed before its exec', async () => {
    const policy = replayPolicy('program', DEFAULT_POLICY, { listenFds: true });
    const handoff = handOff(cp, policy);
    const h = await launchHeld(['sleep', '600'], { stdio: 'ignore' });
    held.push(h);
    expect(() => replayIntoHeld(h.pid, planRestore(handoff.cp, policy), handoff)).toThrow(
      /has no LISTEN_FDNAMES memfd: socket handoff needs fdckpt-hold --listen-fds/,
    );
    expect(await h.exit).toBe(137);
  });
});
