import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { Checkpoint } from '../../src/api/index.js';
import { IMAGE_FINALIZER, NODE_LABEL, setCondition } from '../../src/api/index.js';
import { CheckpointReconciler } from '../../src/controller/checkpoint.js';
import { MemoryEventRecorder } from '../../src/kube/events.js';
import { TerminalError } from '../../src/kube/errors.js';
import type { Harness } from './support.js';
import { createCheckpoint, makePod, reason, startHarness } from './support.js';

let h: Harness;
let events: MemoryEventRecorder;
let r: CheckpointReconciler;

beforeEach(async () => {
  h = await startHarness();
  events = new MemoryEventRecorder();
  r = new CheckpointReconciler({ checkpoints: h.checkpoints, core: h.core, events });
});
afterEach(async () => {
  await h.close();
});

/** What the node agent writes: its conditions and counts. */
async function agentReports(name: string, captured: boolean, leaks: number): Promise<void> {
  const c = await h.checkpoints.get('default', name);
  const now = new Date();
  let conditions = setCondition(
    c.status?.conditions,
    {
      type: 'Captured',
      status: captured ? 'True' : 'False',
      reason: captured ? 'Captured' : 'CaptureFailed',
      message: captured ? 'ok' : 'no processes in the pod cgroup',
    },
    now,
  );
  conditions = setCondition(
    conditions,
    {
      type: 'LeakFree',
      status: leaks ? 'False' : 'True',
      reason: leaks ? 'LeaksFound' : 'NoLeaks',
      message: leaks ? 'pipe:[1] held by pid 9 (cat, host)' : 'none',
    },
    now,
  );
  await h.checkpoints.replaceStatus({
    ...c,
    status: {
      ...c.status,
      conditions,
      totalFds: 7,
      totalProcesses: 1,
      leaks: { total: leaks, items: [] },
      image: captured
        ? { node: 'n1', path: '/var/lib/fdckpt/x.img', size: 10, sha256: 'a'.repeat(64) }
        : undefined,
    },
  });
}

describe('CheckpointReconciler, step by step', () => {
  it('a missing Checkpoint is done', async () => {
    expect(await r.reconcile('default/nothing')).toEqual({});
  });

  it('adds the finalizer, waits for the pod, schedules to its node, then judges the agent', async () => {
    await createCheckpoint(h, 'c1', { podName: 'p1' });
    const first = await r.reconcile('default/c1');
    let c = await h.checkpoints.get('default', 'c1');
    expect(c.metadata.finalizers).toEqual([IMAGE_FINALIZER]);
    expect(reason(c, 'Scheduled')).toBe('False/PodNotFound');
    expect(c.status?.phase).toBe('Pending');
    expect(first.requeueAfterMs).toBeGreaterThan(0);

    await makePod(h, 'p1', { node: 'n1', phase: 'Pending' });
    await r.reconcile('default/c1');
    c = await h.checkpoints.get('default', 'c1');
    expect(reason(c, 'Scheduled')).toBe('False/PodNotRunning');

    const pod = await h.core.readNamespacedPod({ name: 'p1', namespace: 'default' });
    await h.core.replaceNamespacedPodStatus({
      name: 'p1',
      namespace: 'default',
      body: { ...pod, status: { phase: 'Running' } },
    });
    await r.reconcile('default/c1');
    c = await h.checkpoints.get('default', 'c1');
    expect(reason(c, 'Scheduled')).toBe('True/AssignedToNode');
    expect(reason(c, 'Ready')).toBe('Unknown/WaitingForAgent');
    expect(c.status?.nodeName).toBe('n1');
    expect(c.status?.podUID).toBe(pod.metadata?.uid);
    expect(c.status?.observedGeneration).toBe(c.metadata.generation);
    expect(c.metadata.labels?.[NODE_LABEL]).toBe('n1');
    expect(c.status?.phase).toBe('Scheduled');

    // Nothing new: nothing written.
    const rv = c.metadata.resourceVersion;
    await r.reconcile('default/c1');
    expect((await h.checkpoints.get('default', 'c1')).metadata.resourceVersion).toBe(rv);

    await agentReports('c1', true, 0);
    await r.reconcile('default/c1');
    c = await h.checkpoints.get('default', 'c1');
    expect(reason(c, 'Ready')).toBe('True/Captured');
    expect(c.status?.phase).toBe('Ready');
    expect(reason(c, 'Checkpointable')).toBe('True/Checkpointable');
    expect(events.events.map((e) => e.reason)).toEqual(
      expect.arrayContaining(['PodNotFound', 'PodNotRunning', 'AssignedToNode', 'Captured']),
    );
    // Waiting for a pod to start is not something to act on: a success emits no Warning.
    expect(events.events.filter((e) => e.type === 'Warning')).toEqual([]);
  });

  it('a pod that never appears fails the Checkpoint after podStartTimeoutMs, for good', async () => {
    await createCheckpoint(h, 'late', { podName: 'nowhere' });
    const created = Date.parse((await h.checkpoints.get('default', 'late')).metadata.creationTimestamp ?? '');
    let now = created + 10_000;
    const timed = new CheckpointReconciler({
      checkpoints: h.checkpoints,
      core: h.core,
      events,
      now: () => new Date(now),
      podStartTimeoutMs: 60_000,
    });
    const first = await timed.reconcile('default/late');
    // The requeue never overshoots the deadline.
    expect(first.requeueAfterMs).toBeLessThanOrEqual(50_000);
    expect((await h.checkpoints.get('default', 'late')).status?.phase).toBe('Pending');
    now = created + 61_000;
    await timed.reconcile('default/late');
    let c = await h.checkpoints.get('default', 'late');
    expect(c.status?.phase).toBe('Failed');
    expect(reason(c, 'Failed')).toBe('True/PodNotFound');
    expect(c.status?.conditions?.find((x) => x.type === 'Failed')?.message).toBe(
      'pod nowhere does not exist 60 s after the Checkpoint was created',
    );
    expect(events.events.filter((e) => e.type === 'Warning').map((e) => e.reason)).toEqual(['PodNotFound']);
    // Failed is final: a pod appearing afterwards is not captured.
    await makePod(h, 'nowhere', { node: 'n1', phase: 'Running' });
    await timed.reconcile('default/late');
    c = await h.checkpoints.get('default', 'late');
    expect(c.status?.phase).toBe('Failed');
    expect(c.status?.nodeName).toBeUndefined();
  });

  it("a dry run's verdict is Checkpointable, naming the blocking fds and the CR field that accepts them", async () => {
    await makePod(h, 'p', { node: 'n1', phase: 'Running' });
    await createCheckpoint(h, 'dry', { podName: 'p', dryRun: true });
    await r.reconcile('default/dry');
    await agentReports('dry', true, 0);
    const c0 = await h.checkpoints.get('default', 'dry');
    const problem = (fd: number): { kind: string; pid: number; fd: number; message: string } => ({
      kind: 'unsupported',
      pid: 9,
      fd,
      message: `pid 9 fd ${fd} (anon_inode:inotify): type inotify cannot be restored yet (to accept it, add inotify to spec.ignore.types)`,
    });
    await h.checkpoints.replaceStatus({
      ...c0,
      status: { ...c0.status, image: undefined, problems: { total: 5, items: [3, 4, 5, 6, 7].map(problem) } },
    });
    await r.reconcile('default/dry');
    const c = await h.checkpoints.get('default', 'dry');
    expect(reason(c, 'Ready')).toBe('True/DryRunComplete');
    expect(reason(c, 'Checkpointable')).toBe('False/UnsupportedFds');
    const message = c.status?.conditions?.find((x) => x.type === 'Checkpointable')?.message ?? '';
    expect(message).toMatch(/^5 fd\(s\) cannot be restored: pid 9 fd 3 .*; and 2 more in status\.problems$/);
    expect(message).toContain('spec.ignore.types');
    expect(message).not.toContain('--ignore-type');
    expect(c.status?.conditions?.find((x) => x.type === 'Ready')?.message).toContain(
      'not checkpointable, see Checkpointable',
    );
  });

  it('leaks fail the checkpoint under leakPolicy Fail and only warn under Warn', async () => {
    await makePod(h, 'p', { node: 'n1', phase: 'Running' });
    await createCheckpoint(h, 'strict', { podName: 'p' });
    await createCheckpoint(h, 'lenient', { podName: 'p', leakPolicy: 'Warn' });
    for (const name of ['strict', 'lenient']) {
      await r.reconcile(`default/${name}`);
      await agentReports(name, true, 2);
      await r.reconcile(`default/${name}`);
    }
    const strict = await h.checkpoints.get('default', 'strict');
    expect(reason(strict, 'Ready')).toBe('False/LeaksFound');
    expect(strict.status?.phase).toBe('Failed');
    expect(reason(strict, 'Checkpointable')).toBe('False/LeaksFound');
    expect(reason(strict, 'Failed')).toBe('True/LeaksFound');
    const lenient = await h.checkpoints.get('default', 'lenient');
    expect(reason(lenient, 'Ready')).toBe('True/ReadyWithLeaks');
    expect(reason(lenient, 'Checkpointable')).toBe('True/LeaksAccepted');
    expect(reason(lenient, 'Failed')).toBeUndefined();
  });

  it('a failed capture fails the checkpoint with the agent reason', async () => {
    await makePod(h, 'p', { node: 'n1', phase: 'Running' });
    await createCheckpoint(h, 'c', { podName: 'p' });
    await r.reconcile('default/c');
    await agentReports('c', false, 0);
    await r.reconcile('default/c');
    const c = await h.checkpoints.get('default', 'c');
    expect(reason(c, 'Ready')).toBe('False/CaptureFailed');
    expect(c.status?.phase).toBe('Failed');
  });

  it('an invalid spec gets InvalidSpec once and is not retried', async () => {
    // The double has no CEL; our own validation must catch what CEL would.
    await createCheckpoint(h, 'bad', { podName: 'p', dryRun: true, afterCapture: 'Stop' });
    await expect(r.reconcile('default/bad')).rejects.toBeInstanceOf(TerminalError);
    const c = await h.checkpoints.get('default', 'bad');
    expect(reason(c, 'InvalidSpec')).toBe('True/InvalidSpec');
    expect(reason(c, 'Ready')).toBe('False/InvalidSpec');
    const rv = c.metadata.resourceVersion;
    await expect(r.reconcile('default/bad')).rejects.toBeInstanceOf(TerminalError);
    expect((await h.checkpoints.get('default', 'bad')).metadata.resourceVersion).toBe(rv);
  });

  it('deletion waits for the agent to delete the image, then drops the finalizer', async () => {
    await makePod(h, 'p', { node: 'n1', phase: 'Running' });
    await createCheckpoint(h, 'c', { podName: 'p' });
    await r.reconcile('default/c');
    await agentReports('c', true, 0);
    await r.reconcile('default/c');
    await h.checkpoints.delete(await h.checkpoints.get('default', 'c'));
    const waiting = await r.reconcile('default/c');
    expect(waiting.requeueAfterMs).toBeGreaterThan(0);
    const c: Checkpoint = await h.checkpoints.get('default', 'c');
    expect(c.status?.phase).toBe('Deleting');
    expect(c.metadata.finalizers).toEqual([IMAGE_FINALIZER]);
    // The agent deletes the image and clears status.image.
    await h.checkpoints.replaceStatus({ ...c, status: { ...c.status, image: undefined } });
    await r.reconcile('default/c');
    await expect(h.checkpoints.get('default', 'c')).rejects.toMatchObject({ code: 404 });
  });

  it('a finished Checkpoint is deleted after its TTL', async () => {
    let now = new Date();
    r = new CheckpointReconciler({ checkpoints: h.checkpoints, core: h.core, events, now: () => now });
    await makePod(h, 'p', { node: 'n1', phase: 'Running' });
    await createCheckpoint(h, 'c', { podName: 'p', ttlSecondsAfterFinished: 60, dryRun: true });
    await r.reconcile('default/c');
    await agentReports('c', true, 0);
    const c = await h.checkpoints.get('default', 'c');
    await h.checkpoints.replaceStatus({ ...c, status: { ...c.status, image: undefined } });
    const result = await r.reconcile('default/c');
    expect(reason(await h.checkpoints.get('default', 'c'), 'Ready')).toBe('True/DryRunComplete');
    expect(result.requeueAfterMs).toBeGreaterThan(50_000);
    now = new Date(now.getTime() + 61_000);
    await r.reconcile('default/c');
    await r.reconcile('default/c');
    await expect(h.checkpoints.get('default', 'c')).rejects.toMatchObject({ code: 404 });
    expect(events.events.map((e) => e.reason)).toContain('Expired');
  });
});

describe('CheckpointReconciler, node gone', () => {
  it('drops the finalizer with ImageOrphaned when the image node no longer exists', async () => {
    let now = new Date();
    r = new CheckpointReconciler({
      checkpoints: h.checkpoints,
      core: h.core,
      events,
      now: () => now,
      orphanAfterMs: 60_000,
    });
    await makePod(h, 'p', { node: 'n1', phase: 'Running' });
    await createCheckpoint(h, 'c', { podName: 'p' });
    await r.reconcile('default/c');
    await agentReports('c', true, 0);
    await r.reconcile('default/c');
    await h.checkpoints.delete(await h.checkpoints.get('default', 'c'));
    await r.reconcile('default/c');
    expect((await h.checkpoints.get('default', 'c')).metadata.finalizers).toEqual([IMAGE_FINALIZER]);
    // No Node n1 exists: after the grace period the image is declared orphaned. The grace
    // counts from the deletionTimestamp, which the API server stamps (to the second).
    const deleted = Date.parse((await h.checkpoints.get('default', 'c')).metadata.deletionTimestamp ?? '');
    now = new Date(deleted + 61_000);
    await r.reconcile('default/c');
    await expect(h.checkpoints.get('default', 'c')).rejects.toMatchObject({ code: 404 });
    expect(events.events.find((e) => e.reason === 'ImageOrphaned')?.type).toBe('Warning');
  });
});
