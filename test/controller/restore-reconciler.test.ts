import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { LAUNCHER, NODE_LABEL, RESTORE_LABEL, setCondition, type Restore } from '../../src/api/index.js';
import { CheckpointReconciler } from '../../src/controller/checkpoint.js';
import { MemoryEventRecorder } from '../../src/kube/events.js';
import { RestoreReconciler } from '../../src/controller/restore.js';
import { TerminalError } from '../../src/kube/errors.js';
import type { Harness } from './support.js';
import {
  agentReportsCaptured,
  createCheckpoint,
  createRestore,
  makePod,
  reason,
  startHarness,
} from './support.js';

let h: Harness;
let events: MemoryEventRecorder;
let r: RestoreReconciler;

beforeEach(async () => {
  h = await startHarness();
  // The restored pod's node must exist (a Restore to a missing node fails NodeNotFound).
  await h.core.createNode({ body: { metadata: { name: 'n1' } } });
  events = new MemoryEventRecorder();
  r = new RestoreReconciler({
    restores: h.restores,
    checkpoints: h.checkpoints,
    core: h.core,
    events,
    launcher: { image: 'fdckpt:test' },
  });
});
afterEach(async () => {
  await h.close();
});

/** A Checkpoint of pod `src` on n1 that the agent finished, with an image. */
async function readyCheckpoint(name: string, argv = ['sleep', '1000']): Promise<void> {
  await makePod(h, 'src', { node: 'n1', phase: 'Running' });
  await createCheckpoint(h, name, { podName: 'src' });
  const ctl = new CheckpointReconciler({
    checkpoints: h.checkpoints,
    core: h.core,
    events: new MemoryEventRecorder(),
  });
  await ctl.reconcile(`default/${name}`);
  await agentReportsCaptured(h, name, {
    containers: [{ name: 'app', processes: 1, fds: 5, argv }],
    image: { node: 'n1', path: '/var/lib/fdckpt/default/c.img', size: 100, sha256: 'b'.repeat(64) },
  });
  await ctl.reconcile(`default/${name}`);
}

/** What the node agent writes when the replay failed at fd 4. */
async function agentReportsReplayFailed(rs: Restore): Promise<void> {
  await h.restores.replaceStatus({
    ...rs,
    status: {
      ...rs.status,
      conditions: setCondition(rs.status?.conditions, {
        type: 'Replayed',
        status: 'False',
        reason: 'ReplayFailed',
        message: 'fd 4: /gone: ENOENT',
      }),
    },
  });
}

async function setPodPhase(name: string, phase: string): Promise<void> {
  const pod = await h.core.readNamespacedPod({ name, namespace: 'default' });
  await h.core.replaceNamespacedPodStatus({
    name,
    namespace: 'default',
    body: { ...pod, status: { phase } },
  });
}

describe('RestoreReconciler, step by step', () => {
  it("a captured argv that is a rewritten title runs the source container's command", async () => {
    await readyCheckpoint('c1', ['redis-server *:6379', '', '', '']);
    await createRestore(h, 'rt', { checkpointName: 'c1', target: { newPod: {} } });
    await r.reconcile('default/rt');
    const pod = await h.core.readNamespacedPod({ name: 'rt-restored', namespace: 'default' });
    expect(pod.spec?.containers[0]?.command?.slice(-3)).toEqual(['--', 'sleep', '1000']);
  });

  it('a Restore with listenFds gives the new pod a launcher run with --listen-fds', async () => {
    await readyCheckpoint('c1');
    await createRestore(h, 'rl', { checkpointName: 'c1', target: { newPod: {} }, listenFds: true });
    await r.reconcile('default/rl');
    const pod = await h.core.readNamespacedPod({ name: 'rl-restored', namespace: 'default' });
    expect(pod.spec?.containers[0]?.command).toEqual([
      `${LAUNCHER.mountPath}/${LAUNCHER.binary}`,
      '--timeout',
      '600',
      '--listen-fds',
      '--',
      'sleep',
      '1000',
    ]);
  });

  it('waits for the checkpoint, creates the launcher pod, assigns the agent, then reports Ready', async () => {
    await createRestore(h, 'r1', { checkpointName: 'c1', target: { newPod: {} } });
    await r.reconcile('default/r1');
    let rs = await h.restores.get('default', 'r1');
    expect(reason(rs, 'Ready')).toBe('False/CheckpointNotFound');
    expect(rs.status?.phase).toBe('Waiting');

    await readyCheckpoint('c1');
    await r.reconcile('default/r1');
    rs = await h.restores.get('default', 'r1');
    expect(reason(rs, 'Scheduled')).toBe('False/PodNotRunning');
    const pod = await h.core.readNamespacedPod({ name: 'r1-restored', namespace: 'default' });
    expect(pod.spec?.nodeName).toBe('n1');
    expect(pod.metadata?.labels?.[RESTORE_LABEL]).toBe('r1');
    expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'Restore',
      name: 'r1',
      uid: rs.metadata.uid,
      controller: true,
    });
    expect(pod.spec?.initContainers?.[0]).toMatchObject({
      name: LAUNCHER.initContainer,
      image: 'fdckpt:test',
    });
    expect(pod.spec?.containers[0]?.command).toEqual([
      `${LAUNCHER.mountPath}/${LAUNCHER.binary}`,
      '--timeout',
      '600',
      '--',
      'sleep',
      '1000',
    ]);
    expect(pod.spec?.volumes?.map((v) => v.name)).toContain(LAUNCHER.volume);

    await setPodPhase('r1-restored', 'Running');
    await r.reconcile('default/r1');
    rs = await h.restores.get('default', 'r1');
    expect(reason(rs, 'Scheduled')).toBe('True/AssignedToNode');
    expect(rs.status?.restoredPod).toBe('r1-restored');
    expect(rs.metadata.labels?.[NODE_LABEL]).toBe('n1');

    const rv = rs.metadata.resourceVersion;
    await r.reconcile('default/r1');
    expect((await h.restores.get('default', 'r1')).metadata.resourceVersion).toBe(rv);

    await h.restores.replaceStatus({
      ...rs,
      status: {
        ...rs.status,
        fdsReplayed: 5,
        conditions: setCondition(rs.status?.conditions, {
          type: 'Replayed',
          status: 'True',
          reason: 'Replayed',
          message: '5 fds',
        }),
      },
    });
    await r.reconcile('default/r1');
    rs = await h.restores.get('default', 'r1');
    expect(reason(rs, 'Ready')).toBe('True/Restored');
    expect(rs.status?.phase).toBe('Ready');
    expect(events.events.map((e) => e.reason)).toEqual(
      expect.arrayContaining(['PodCreated', 'AssignedToNode', 'Restored']),
    );
    // Waiting for the pod it created itself is not something a user must act on.
    expect(events.events.filter((e) => e.type === 'Warning')).toEqual([]);
    expect(rs.status?.conditions?.find((c) => c.type === 'Failed')).toBeUndefined();
  });

  it('a failed Restore deletes the pod it created, with Failed=True and one Warning', async () => {
    await readyCheckpoint('c1');
    await createRestore(h, 'r5', { checkpointName: 'c1', target: { newPod: {} } });
    await r.reconcile('default/r5');
    await setPodPhase('r5-restored', 'Running');
    await r.reconcile('default/r5');
    let rs = await h.restores.get('default', 'r5');
    expect(reason(rs, 'Scheduled')).toBe('True/AssignedToNode');
    await agentReportsReplayFailed(rs);
    await r.reconcile('default/r5');
    rs = await h.restores.get('default', 'r5');
    expect(reason(rs, 'Failed')).toBe('True/ReplayFailed');
    expect(rs.status?.conditions?.find((c) => c.type === 'Failed')?.message).toBe('fd 4: /gone: ENOENT');
    // The pod is bound to a node: the API server keeps it, terminating, until its kubelet confirms.
    const pod = await h.core
      .readNamespacedPod({ name: 'r5-restored', namespace: 'default' })
      .catch(() => undefined);
    expect(pod === undefined || pod.metadata?.deletionTimestamp !== undefined).toBe(true);
    expect(events.events.filter((e) => e.type === 'Warning').map((e) => e.reason)).toEqual(['ReplayFailed']);
    expect(events.events.map((e) => e.reason)).toContain('PodDeleted');
  });

  it('a replay failure fails the Restore with the agent reason', async () => {
    await readyCheckpoint('c1');
    await makePod(h, 'waiting', { node: 'n1', phase: 'Running' });
    await createRestore(h, 'r2', { checkpointName: 'c1', target: { podName: 'waiting' }, fds: 'Inherited' });
    await r.reconcile('default/r2');
    let rs = await h.restores.get('default', 'r2');
    expect(reason(rs, 'Scheduled')).toBe('True/AssignedToNode');
    await agentReportsReplayFailed(rs);
    await r.reconcile('default/r2');
    rs = await h.restores.get('default', 'r2');
    expect(reason(rs, 'Ready')).toBe('False/ReplayFailed');
    expect(rs.status?.phase).toBe('Failed');
    // The user's own pod is left alone.
    const waiting = await h.core.readNamespacedPod({ name: 'waiting', namespace: 'default' });
    expect(waiting.metadata?.deletionTimestamp).toBeUndefined();
  });

  it('refuses a node that does not hold the image', async () => {
    await readyCheckpoint('c1');
    await createRestore(h, 'r3', { checkpointName: 'c1', target: { newPod: { nodeName: 'n2' } } });
    await r.reconcile('default/r3');
    const rs = await h.restores.get('default', 'r3');
    expect(reason(rs, 'Ready')).toBe('False/ImageNotOnNode');
    expect(rs.status?.phase).toBe('Failed');
  });

  it('an invalid target is InvalidSpec, not retried', async () => {
    await createRestore(h, 'bad', { checkpointName: 'c1', target: { podName: 'a', newPod: {} } });
    await expect(r.reconcile('default/bad')).rejects.toBeInstanceOf(TerminalError);
    const rs = await h.restores.get('default', 'bad');
    expect(reason(rs, 'InvalidSpec')).toBe('True/InvalidSpec');
    expect(rs.status?.conditions?.find((c) => c.type === 'InvalidSpec')?.message).toContain(
      'exactly one of podName and newPod',
    );
  });
});

describe('RestoreReconciler, target pod ended', () => {
  it('a target pod that has finished fails the Restore', async () => {
    await readyCheckpoint('c1');
    await makePod(h, 'done', { node: 'n1', phase: 'Failed' });
    await createRestore(h, 'r4', { checkpointName: 'c1', target: { podName: 'done' } });
    await r.reconcile('default/r4');
    const rs = await h.restores.get('default', 'r4');
    expect(reason(rs, 'Ready')).toBe('False/PodFinished');
    expect(rs.status?.phase).toBe('Failed');
  });
});
