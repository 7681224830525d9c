/**
 * Issue 12 item 21: on a hybrid cgroup host (v1 freezer and cgroup2 both
 * mounted), `capture --cgroup /sys/fs/cgroup/freezer/X` froze and captured
 * the processes of the cgroup2 group of the same name instead of X's. A
 * directory of one hierarchy must mean that hierarchy's cgroup only.
 */
import { afterEach, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { resolveCgroup, listTasks } from '../../src/agent/cgroup/cgroup.js';
import { captureCgroup } from '../../src/agent/collect/cgroupcapture.js';
import { destroyCgroup, killAll, makeCgroup, startPython, type Started } from '../support/cgtest.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const started: Started[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await killAll(started);
  for (const c of cleanups.splice(0)) await c();
});

test('capture of a v1 freezer directory captures that cgroup, not the cgroup2 one of the same name', async () => {
  const rel = `/fdckpt-hybrid-${randomBytes(4).toString('hex')}`;
  const v1 = makeCgroup('v1', rel);
  const v2 = makeCgroup('v2', rel);
  cleanups.push(
    () => destroyCgroup(v1),
    () => destroyCgroup(v2),
  );
  const inV1 = await startPython('ready({})\nimport time\ntime.sleep(3600)\n', undefined);
  started.push(inV1);
  // Into the v1 freezer group only (its cgroup2 group stays the test's).
  writeFileSync(join(v1, 'cgroup.procs'), String(inV1.pid));
  const inV2 = await startPython('ready({})\nimport time\ntime.sleep(3600)\n', v2);
  started.push(inV2);
  expect(listTasks(resolveCgroup(v1)).pids).toEqual([inV1.pid]);
  expect(listTasks(resolveCgroup(v2)).pids).toEqual([inV2.pid]);
  const journal = mkdtempSync(join(tmpdir(), 'fdckpt-hybrid-j-'));
  cleanups.push(() => rmSync(journal, { recursive: true, force: true }));
  const result = await captureCgroup(v1, { leakPolicy: 'ignore', freezeGuard: { journalDir: journal } });
  expect(result.tasks.pids).toEqual([inV1.pid]);
  expect(result.checkpoint.processes.map((p) => p.pid)).toEqual([inV1.pid]);
});
