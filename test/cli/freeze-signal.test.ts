/** A capture interrupted by SIGTERM while the cgroup is frozen must leave it thawed. */
import { afterEach, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { isFrozen } from '../../src/agent/cgroup/freeze.js';
import { resolveCgroup } from '../../src/agent/cgroup/cgroup.js';
import { destroyCgroup, killAll, makeCgroup, startPython, type Started } from '../support/cgtest.js';

const bin = fileURLToPath(new URL('../../bin/fdckpt.js', import.meta.url));
const started: Started[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await killAll(started);
  for (const c of cleanups.splice(0)) await c();
});

// Enough fds that the capture keeps the cgroup frozen long enough to be seen frozen.
const MANY_FDS = `
import os, resource, time
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
keep = [os.pipe() for _ in range(9000)]
ready({})
time.sleep(3600)
`;

test('SIGTERM during a frozen capture: the process exits and the cgroup is thawed', async () => {
  const dir = makeCgroup('v2');
  const tmp = mkdtempSync(join(tmpdir(), 'fdckpt-sig-'));
  cleanups.push(
    () => destroyCgroup(dir),
    () => rmSync(tmp, { recursive: true, force: true }),
  );
  started.push(await startPython(MANY_FDS, dir));
  const cli = spawn(
    process.execPath,
    [bin, 'capture', '--cgroup', dir, '--output', join(tmp, 'x.fdimg'), '--leak-policy', 'ignore'],
    {
      stdio: 'ignore',
    },
  );
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    cli.once('exit', (code, signal) => resolve([code, signal])),
  );
  let sawFrozen = false;
  let done = false;
  void exited.then(() => (done = true));
  while (!done) {
    if (/^frozen 1$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8'))) {
      sawFrozen = true;
      cli.kill('SIGTERM');
      break;
    }
    await sleep(1);
  }
  const [code, signal] = await exited;
  if (!sawFrozen)
    throw new Error(
      `never saw the cgroup frozen before fdckpt exited (code ${code}): capture too fast to interrupt`,
    );
  expect(signal ?? code).toBe('SIGTERM');
  expect(isFrozen(resolveCgroup(dir))).toBe(false);
});
