/**
 * Listening sockets on a real process (test/fixtures/fdproc.py `listeners`:
 * TCP over IPv4 and IPv6, unix by path and abstract, each with its own
 * backlog and options). The process is killed, its table restored into a
 * fresh one (its stale unix socket file still there), and the restored
 * sockets listen again: same addresses, backlogs and options, and clients
 * connect.
 */
import { describe, expect, test } from '@jest/globals';
import { connect } from 'node:net';
import { capture } from '../../src/agent/capture/index.js';
import { diffCheckpoints } from '../../src/agent/image/index.js';
import type { Checkpoint, FileData } from '../../src/agent/model.js';
import { restore } from '../../src/agent/replay/index.js';
import { fdOf, type Fixture } from '../support/fixture.js';
import { useFixtures } from '../support/use-fixtures.js';
import { tableView } from './normalize.js';
import { fileAtFd, trackRestored, restoreAndRecapture } from './support.js';

const started = trackRestored();
const fixture = useFixtures();

function dataOf(cp: Checkpoint, pid: number, fd: number): FileData {
  return fileAtFd(cp, pid, fd).data;
}

/** Kills the fixture (its ports free again) but keeps its directory, stale socket file included. */
async function kill(fx: Fixture): Promise<void> {
  const exited = new Promise((resolve) => fx.child.once('exit', resolve));
  process.kill(fx.pid, 'SIGKILL');
  await exited;
}

/** Resolves once a client connection to `where` is established (the kernel accepts into the backlog). */
function connects(where: { port: number; host: string } | { path: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(where);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe.each([true, false])('listening sockets (batched: %s)', (batch) => {
  test('capture → kill → restore: same addresses, backlogs and options; clients connect', async () => {
    const fx = await fixture('listeners');
    const before = capture([fx.pid]);
    expect(before.problems).toEqual([]);
    expect(dataOf(before.checkpoint, fx.pid, fdOf(fx, 'v4'))).toMatchObject({
      state: 'listen',
      listen: { backlog: 77, reuseAddr: true, keepAlive: true, reusePort: false, noDelay: false },
    });
    expect(dataOf(before.checkpoint, fx.pid, fdOf(fx, 'v6'))).toMatchObject({
      listen: { backlog: 5, v6Only: true, noDelay: true, reusePort: true, reuseAddr: false },
    });
    expect(dataOf(before.checkpoint, fx.pid, fdOf(fx, 'unix'))).toMatchObject({ listen: { backlog: 9 } });
    expect(dataOf(before.checkpoint, fx.pid, fdOf(fx, 'abstract'))).toMatchObject({ listen: { backlog: 3 } });

    await kill(fx);
    const { pid, after } = await restoreAndRecapture(before.checkpoint, started, batch);
    expect(after.problems).toEqual([]);
    expect(diffCheckpoints(before.checkpoint, after.checkpoint)).toEqual([]);
    expect(tableView(after.checkpoint, pid)).toEqual(tableView(before.checkpoint, fx.pid));

    expect(await connects({ host: '127.0.0.1', port: Number(fx.info['v4_port']) })).toBe(true);
    expect(await connects({ host: '::1', port: Number(fx.info['v6_port']) })).toBe(true);
    expect(await connects({ path: String(fx.info['unix_path']) })).toBe(true);
  });
});

test('a socketpair with both ends in the process is not refused at capture (socketpair.test.ts restores it)', async () => {
  const fx = await fixture('sockets');
  const { problems } = capture([fx.pid]);
  expect(problems.find((p) => p.fd === fdOf(fx, 'sock_a'))).toBeUndefined();
  expect(problems.find((p) => p.fd === fdOf(fx, 'sock_b'))).toBeUndefined();
  expect(problems.find((p) => p.fd === fdOf(fx, 'listener'))).toBeUndefined();
});

test('a unix socket path taken by something that is not a socket fails the restore before the target runs', async () => {
  const fx = await fixture('listeners');
  const cp = capture([fx.pid]).checkpoint;
  await kill(fx);
  const path = String(fx.info['unix_path']);
  const { rmSync, writeFileSync } = await import('node:fs');
  rmSync(path);
  writeFileSync(path, 'not a socket');
  await expect(restore(cp, ['sleep', '60'], { stdio: 'ignore' })).rejects.toThrow(
    `fd ${fdOf(fx, 'unix')} (${path}): the unix socket path exists and is not a socket`,
  );
});
