/**
 * Issue 12 item 14: a Restore whose target's launcher is not ready yet is
 * retried every 500 ms; the image fetched from the capturing node must serve
 * every retry of that Restore (it was released in a `finally`, so each
 * NotReady retry fetched the whole image again), and be released once the
 * Restore is done. The reconcilers run against the API double; the engine is
 * scripted (NotReady twice, then replayed) as in test/controller/agent-reconciler.test.ts.
 */
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { CONDITIONS } from '../../src/api/index.js';
import { AgentCheckpointReconciler } from '../../src/agent/daemon/checkpoint.js';
import type {
  CheckpointPodOutcome,
  NodeEngine,
  RestoreIntoOutcome,
  RestoreIntoRequest,
} from '../../src/agent/daemon/engine.js';
import { NotReadyError } from '../../src/agent/daemon/engine.js';
import { AgentRestoreReconciler } from '../../src/agent/daemon/restore.js';
import { CheckpointReconciler } from '../../src/controller/checkpoint.js';
import { MemoryEventRecorder } from '../../src/kube/events.js';
import { RestoreReconciler } from '../../src/controller/restore.js';
import type { Harness } from '../controller/support.js';
import { createCheckpoint, createRestore, makePod, reason, startHarness } from '../controller/support.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const captured: CheckpointPodOutcome = {
  containers: [{ name: 'app', processes: 1, fds: 3, pid: 10, argv: ['sleep', '1000'] }],
  leaksChecked: true,
  leaks: [],
  problems: [],
  image: { path: '/data/images/default/c.fdckpt', size: 512, sha256: 'c'.repeat(64) },
  durations: { freezeMs: 1, captureMs: 1 },
};

/** NotReady `notReady` times, then a replay. */
class LateLauncher implements NodeEngine {
  calls: RestoreIntoRequest[] = [];
  constructor(private notReady: number) {}
  checkpointPod(): Promise<CheckpointPodOutcome> {
    return Promise.resolve(captured);
  }
  restoreInto(r: RestoreIntoRequest): Promise<RestoreIntoOutcome> {
    this.calls.push(r);
    if (this.notReady-- > 0) return Promise.reject(new NotReadyError('launcher still starting'));
    return Promise.resolve({ fdsReplayed: 3, failures: [], durations: { replayMs: 1 } });
  }
  deleteImage(): Promise<void> {
    return Promise.resolve();
  }
}

test('one Restore fetches its image once across NotReady retries, and releases it at the end', async () => {
  const events = new MemoryEventRecorder();
  const engine = new LateLauncher(2);
  await makePod(h, 'p', { node: 'n1', phase: 'Running' });
  await createCheckpoint(h, 'c', { podName: 'p' });
  const ctl = new CheckpointReconciler({ checkpoints: h.checkpoints, core: h.core, events });
  await ctl.reconcile('default/c');
  await new AgentCheckpointReconciler(h.checkpoints, {
    nodeName: 'n1',
    dataDir: '/data',
    engine,
    core: h.core,
    events,
  }).reconcile('default/c');
  await ctl.reconcile('default/c');
  let fetches = 0;
  let releases = 0;
  const agent = new AgentRestoreReconciler(h.restores, h.checkpoints, {
    nodeName: 'n2',
    dataDir: '/data2',
    engine,
    core: h.core,
    events,
    fetchImage: () => {
      fetches++;
      return Promise.resolve({
        path: `/data2/fetched-${fetches}.fdckpt`,
        transferMs: 5,
        release: () => {
          releases++;
          return Promise.resolve();
        },
      });
    },
  });
  await makePod(h, 'waiting', { node: 'n2', phase: 'Running' });
  await createRestore(h, 'r', { checkpointName: 'c', target: { podName: 'waiting' } });
  const rctl = new RestoreReconciler({
    restores: h.restores,
    checkpoints: h.checkpoints,
    core: h.core,
    events,
    launcher: { image: 'x' },
    imageTransfer: true,
  });
  await rctl.reconcile('default/r');
  for (let i = 0; i < 3; i++) {
    const result = await agent.reconcile('default/r');
    if (i < 2) expect(result.requeueAfterMs).toBe(500);
  }
  expect(engine.calls).toHaveLength(3);
  expect(engine.calls.map((c) => c.imagePath)).toEqual(Array(3).fill('/data2/fetched-1.fdckpt'));
  expect({ fetches, releases }).toEqual({ fetches: 1, releases: 1 });
  const r = await h.restores.get('default', 'r');
  expect(reason(r, CONDITIONS.Replayed)).toBe('True/Replayed');
});
