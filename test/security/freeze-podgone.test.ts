/**
 * Issue 12 item 19: a pod deleted while its capture runs failed the
 * Checkpoint with `CaptureFailed: kcmp(…): EBADF` — the syscall that met the
 * vanished process first. The reason must say what happened: PodGone.
 * Reconcilers against the API double; the engine deletes the pod mid-capture
 * and then fails as the real one does.
 */
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { CONDITIONS } from '../../src/api/index.js';
import { AgentCheckpointReconciler } from '../../src/agent/daemon/checkpoint.js';
import type {
  CheckpointPodOutcome,
  CheckpointPodRequest,
  NodeEngine,
} from '../../src/agent/daemon/engine.js';
import { CheckpointReconciler } from '../../src/controller/checkpoint.js';
import { MemoryEventRecorder } from '../../src/kube/events.js';
import type { Harness } from '../controller/support.js';
import { createCheckpoint, makePod, reason, startHarness } from '../controller/support.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

class DeletedMidCapture implements NodeEngine {
  constructor(private readonly fail: Error) {}
  async checkpointPod(r: CheckpointPodRequest): Promise<CheckpointPodOutcome> {
    await h.core.deleteNamespacedPod({ name: r.pod.name, namespace: r.pod.namespace, gracePeriodSeconds: 0 });
    throw this.fail;
  }
  restoreInto(): never {
    throw new Error('not used');
  }
  deleteImage(): Promise<void> {
    return Promise.resolve();
  }
}

async function run(engine: NodeEngine): Promise<string> {
  const events = new MemoryEventRecorder();
  await makePod(h, 'p', { node: 'n1', phase: 'Running' });
  await createCheckpoint(h, 'c', { podName: 'p' });
  await new CheckpointReconciler({ checkpoints: h.checkpoints, core: h.core, events }).reconcile('default/c');
  await new AgentCheckpointReconciler(h.checkpoints, {
    nodeName: 'n1',
    dataDir: '/data',
    engine,
    core: h.core,
    events,
  }).reconcile('default/c');
  return reason(await h.checkpoints.get('default', 'c'), CONDITIONS.Captured) ?? '';
}

test('a pod deleted mid-capture fails the Checkpoint with PodGone, not the syscall that met it', async () => {
  const got = await run(new DeletedMidCapture(new Error('kcmp(pid 812 fd 3, pid 812 fd 4): EBADF')));
  expect(got).toBe('False/PodGone');
  const c = await h.checkpoints.get('default', 'c');
  const cond = c.status?.conditions?.find((x) => x.type === CONDITIONS.Captured);
  expect(cond?.message).toMatch(/pod default\/p was deleted during capture \(kcmp\(.*\): EBADF\)/);
});
