/**
 * Issue 12 item 9: a Checkpoint deleted while its capture runs: the
 * controller lets it go at once (status has no image yet), the agent then
 * writes the image and nobody ever deletes it (1.4 MB of pod data left on
 * the node). The agent must delete an image whose Checkpoint is gone — or
 * made again under the same name (another uid, which must not get it).
 * Reconcilers against the API double; the image is a real file.
 */
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentCheckpointReconciler } from '../../src/agent/daemon/checkpoint.js';
import type {
  CheckpointPodOutcome,
  CheckpointPodRequest,
  NodeEngine,
} from '../../src/agent/daemon/engine.js';
import { CheckpointReconciler } from '../../src/controller/checkpoint.js';
import { MemoryEventRecorder } from '../../src/kube/events.js';
import type { Harness } from '../controller/support.js';
import { createCheckpoint, makePod, startHarness } from '../controller/support.js';

let h: Harness;
let dir: string;
beforeEach(async () => {
  h = await startHarness();
  dir = mkdtempSync(join(tmpdir(), 'fdckpt-orphan-'));
});
afterEach(async () => {
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Writes a real image file; while "capturing", runs `during` (the deletion). */
class DeletedWhileCapturing implements NodeEngine {
  constructor(private readonly during: () => Promise<void>) {}
  readonly image = (): string => join(dir, 'c.fdckpt');
  async checkpointPod(r: CheckpointPodRequest): Promise<CheckpointPodOutcome> {
    await this.during();
    writeFileSync(this.image(), Buffer.alloc(4096, 7));
    return {
      containers: [
        { name: r.pod.containers[0]!.name, processes: 1, fds: 3, pid: 10, argv: ['sleep', '1000'] },
      ],
      leaksChecked: true,
      leaks: [],
      problems: [],
      image: { path: this.image(), size: 4096, sha256: 'a'.repeat(64) },
      durations: { freezeMs: 1, captureMs: 1 },
    };
  }
  restoreInto(): never {
    throw new Error('not used');
  }
  deleteImage(path: string): Promise<void> {
    rmSync(path, { force: true });
    return Promise.resolve();
  }
}

async function captureWith(
  during: (ctl: CheckpointReconciler) => Promise<void>,
): Promise<DeletedWhileCapturing> {
  const events = new MemoryEventRecorder();
  const ctl = new CheckpointReconciler({ checkpoints: h.checkpoints, core: h.core, events });
  await makePod(h, 'p', { node: 'n1', phase: 'Running' });
  await createCheckpoint(h, 'c', { podName: 'p' });
  await ctl.reconcile('default/c');
  const engine = new DeletedWhileCapturing(() => during(ctl));
  await new AgentCheckpointReconciler(h.checkpoints, {
    nodeName: 'n1',
    dataDir: dir,
    engine,
    core: h.core,
    events,
  }).reconcile('default/c');
  return engine;
}

async function deleteCheckpoint(ctl: CheckpointReconciler): Promise<void> {
  await h.checkpoints.delete(await h.checkpoints.get('default', 'c'));
  // The controller's finalizer step: no image in status yet, so it lets the Checkpoint go.
  await ctl.reconcile('default/c');
  expect(await h.checkpoints.find('default', 'c')).toBeUndefined();
}

test('deleted during capture: the image the capture wrote is deleted', async () => {
  const engine = await captureWith(deleteCheckpoint);
  expect(existsSync(engine.image())).toBe(false);
});

test('deleted and made again under its name: the new Checkpoint does not get the old image, which is deleted', async () => {
  const engine = await captureWith(async (ctl) => {
    await deleteCheckpoint(ctl);
    await createCheckpoint(h, 'c', { podName: 'p' });
  });
  expect(existsSync(engine.image())).toBe(false);
  expect((await h.checkpoints.get('default', 'c')).status?.image).toBeUndefined();
});
