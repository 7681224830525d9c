/**
 * Issue 12 item 20: a Restore to a node that does not exist, or whose pod
 * never starts, waited forever (Waiting/PodNotRunning). It must end, with a
 * condition that says why. RestoreReconciler against the API double.
 */
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { CheckpointReconciler } from '../../src/controller/checkpoint.js';
import { MemoryEventRecorder } from '../../src/kube/events.js';
import { RestoreReconciler } from '../../src/controller/restore.js';
import type { Harness } from '../controller/support.js';
import {
  agentReportsCaptured,
  createCheckpoint,
  createRestore,
  makePod,
  reason,
  startHarness,
} from '../controller/support.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
  await h.core.createNode({ body: { metadata: { name: 'n1' } } });
});
afterEach(async () => {
  await h.close();
});

function restorer(now?: () => Date): RestoreReconciler {
  return new RestoreReconciler({
    restores: h.restores,
    checkpoints: h.checkpoints,
    core: h.core,
    events: new MemoryEventRecorder(),
    launcher: { image: 'fdckpt:test' },
    imageTransfer: true,
    ...(now ? { now } : {}),
  });
}

async function readyCheckpoint(): Promise<void> {
  await makePod(h, 'src', { node: 'n1', phase: 'Running' });
  await createCheckpoint(h, 'c', { podName: 'src' });
  const ctl = new CheckpointReconciler({
    checkpoints: h.checkpoints,
    core: h.core,
    events: new MemoryEventRecorder(),
  });
  await ctl.reconcile('default/c');
  await agentReportsCaptured(h, 'c', {
    containers: [{ name: 'app', processes: 1, fds: 5, pid: 10, argv: ['sleep', '1000'] }],
    image: {
      node: 'n1',
      path: '/var/lib/fdckpt/images/default/c.fdckpt',
      size: 100,
      sha256: 'b'.repeat(64),
    },
  });
  await ctl.reconcile('default/c');
}

test('a Restore to a node that does not exist fails NodeNotFound, and creates no pod', async () => {
  await readyCheckpoint();
  await createRestore(h, 'r', { checkpointName: 'c', target: { newPod: { nodeName: 'nowhere' } } });
  await restorer().reconcile('default/r');
  const r = await h.restores.get('default', 'r');
  expect(reason(r, 'Ready')).toBe('False/NodeNotFound');
  expect(r.status?.phase).toBe('Failed');
  await expect(h.core.readNamespacedPod({ name: 'r-restored', namespace: 'default' })).rejects.toThrow();
});

test('a restored pod that never starts fails the Restore after podStartTimeoutMs (default 300 s)', async () => {
  await readyCheckpoint();
  await createRestore(h, 'r', { checkpointName: 'c', target: { newPod: {} } });
  await restorer().reconcile('default/r');
  expect(reason(await h.restores.get('default', 'r'), 'Scheduled')).toBe('False/PodNotRunning');
  // Six minutes later the pod still has not run.
  await restorer(() => new Date(Date.now() + 360_000)).reconcile('default/r');
  const r = await h.restores.get('default', 'r');
  expect(reason(r, 'Ready')).toBe('False/PodNotStarted');
  expect(r.status?.phase).toBe('Failed');
});
