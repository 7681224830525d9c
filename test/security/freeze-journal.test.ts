/**
 * Issue 12 item 4: an agent SIGKILLed while a pod is frozen mid-capture, its
 * Checkpoint deleted meanwhile: the restarted agent thaws the pod from its
 * freeze journal (src/agent/cgroup/journal.ts), whatever happened to the CR.
 * Node 1's agent is the real `fdckpt agent` process (test/support/agent-process.ts).
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findPodCgroup } from '../../src/agent/cgroup/index.js';
import type { TwoNodes } from '../support/twonodes.js';
import { barePod, startTwoNodes, until } from '../support/twonodes.js';

let t: TwoNodes;
let n1 = '';

beforeAll(async () => {
  t = await startTwoNodes({ agentProcess: 0 });
  n1 = t.cp.nodes[0]!.name;
}, 60_000);

afterAll(async () => {
  await t?.stop();
});

// Enough fds that the capture keeps the pod frozen long enough to be seen (and killed) frozen.
const MANY_FDS = `
import os, resource, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
keep = [os.pipe() for _ in range(min(9000, (hard - 64) // 2))]
time.sleep(3600)
`;

it('a SIGKILLed agent leaves the pod frozen; restarted, it thaws it from its journal', async () => {
  const script = join(t.tmp, 'many-pipes.py');
  writeFileSync(script, MANY_FDS);
  // barePod's script is a shell command line.
  await barePod(t, 'journaled', n1, `exec python3 ${script}`);
  const events = await until('pod journaled running with its fds', async () => {
    const pod = await t.c.core.readNamespacedPod({ name: 'journaled', namespace: 'default' });
    if (pod.status?.phase !== 'Running') return undefined;
    const ids = (pod.status.containerStatuses ?? []).map((s) => s.containerID ?? '');
    const cg = findPodCgroup(pod.metadata?.uid ?? '', ids);
    const pids = readFileSync(join(cg.containers[0]!.cgroup.v2Dir!, 'cgroup.procs'), 'utf8')
      .trim()
      .split('\n');
    const fds = pids.filter(Boolean).map((p) => {
      try {
        return readdirSync(`/proc/${p}/fd`).length;
      } catch {
        return 0;
      }
    });
    return fds.some((n) => n >= 2000) ? join(cg.pod.v2Dir!, 'cgroup.events') : undefined;
  });
  const frozen = (): boolean => /^frozen 1$/m.test(readFileSync(events, 'utf8'));
  await t.c.custom.createNamespacedCustomObject({
    group: 'fdckpt.io',
    version: 'v1alpha1',
    namespace: 'default',
    plural: 'checkpoints',
    body: {
      apiVersion: 'fdckpt.io/v1alpha1',
      kind: 'Checkpoint',
      metadata: { name: 'journaled', namespace: 'default' },
      spec: { podName: 'journaled' },
    },
  });
  const t0 = Date.now();
  while (!frozen() && Date.now() - t0 < 30_000) await new Promise((r) => setImmediate(r));
  expect(frozen()).toBe(true);
  const frozenAt = Date.now();
  await t.agentProcess!.kill();
  // Nobody is left to thaw it: frozen it stays.
  await sleep(1000);
  expect(frozen()).toBe(true);
  await t.c.custom
    .deleteNamespacedCustomObject({
      group: 'fdckpt.io',
      version: 'v1alpha1',
      namespace: 'default',
      plural: 'checkpoints',
      name: 'journaled',
    })
    .catch(() => undefined);
  await t.agentProcess!.start();
  const t1 = Date.now();
  while (frozen() && Date.now() - t1 < 10_000) await sleep(20);
  expect(frozen()).toBe(false);
  // Thawed by the journal on start, not by the capture's watchdog (30 s after the freeze).
  expect(Date.now() - frozenAt).toBeLessThan(25_000);
}, 120_000);
