/**
 * The Migration reconciler step by step against the API double, with the real
 * Checkpoint and Restore reconcilers and the agents' status writes played by
 * the test. Every failure before the target runs must end with the target
 * gone, the source thawed and still there, and the reason in the status.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { Migration } from '../../src/api/index.js';
import { DEFAULT_OPERATOR_NAMESPACE, THAW_ANNOTATION } from '../../src/api/index.js';
import { CheckpointReconciler } from '../../src/controller/checkpoint.js';
import { MemoryEventRecorder } from '../../src/kube/events.js';
import { MigrationReconciler, targetPodName } from '../../src/controller/migration/reconciler.js';
import { RestoreReconciler } from '../../src/controller/restore.js';
import { TerminalError } from '../../src/kube/errors.js';
import type { MigrationHarness } from './migration-support.js';
import {
  agentCaptured,
  agentReplayed,
  agentThawed,
  createMigration,
  kubeletConfirmsDeletion,
  podAlive,
  setPodPhase,
  startMigrationHarness,
} from './migration-support.js';
import { makePod, reason } from './support.js';

let h: MigrationHarness;
let clock: Date;
let mig: MigrationReconciler;
let ckpts: CheckpointReconciler;
let restores: RestoreReconciler;

beforeEach(async () => {
  h = await startMigrationHarness();
  clock = new Date();
  const events = new MemoryEventRecorder();
  const now = (): Date => clock;
  mig = new MigrationReconciler({ ...h, events, now, pollMs: 10 });
  ckpts = new CheckpointReconciler({ checkpoints: h.checkpoints, core: h.core, events });
  restores = new RestoreReconciler({
    restores: h.restores,
    checkpoints: h.checkpoints,
    core: h.core,
    events,
    launcher: { image: 'fdckpt:test', hostPath: '/usr/local/bin/fdckpt-hold' },
    imageTransfer: true,
  });
  await makePod(h, 'src', { node: 'n1', phase: 'Running' });
});
afterEach(async () => {
  await h.close();
});

const get = (name = 'm1'): Promise<Migration> => h.migrations.get('default', name);

/** Migration m1 through capture: returns with the Restore created. */
async function throughCapture(): Promise<Migration> {
  await createMigration(h, 'm1', { podName: 'src' });
  await mig.reconcile('default/m1');
  await ckpts.reconcile('default/m1');
  await agentCaptured(h, 'm1');
  await ckpts.reconcile('default/m1');
  await mig.reconcile('default/m1');
  return get();
}

/** From Restoring, the Restore creates its pod on n2 and the pod runs. */
async function targetRuns(m: Migration): Promise<string> {
  await restores.reconcile('default/m1');
  const pod = targetPodName(m);
  await setPodPhase(h, pod, 'Running');
  await restores.reconcile('default/m1');
  return pod;
}

describe('MigrationReconciler, a bare pod', () => {
  it('captures, restores on the other node, and deletes the source only afterwards', async () => {
    await createMigration(h, 'm1', { podName: 'src' });
    await mig.reconcile('default/m1');
    let m = await get();
    expect(m.status?.phase).toBe('Checkpointing');
    expect(m.status).toMatchObject({
      sourceNode: 'n1',
      targetNode: 'n2',
      sourcePod: 'src',
      checkpointName: 'm1',
    });
    const ckpt = await h.checkpoints.get('default', 'm1');
    expect(ckpt.spec).toMatchObject({ podName: 'src', afterCapture: 'Stop', leakPolicy: 'Fail' });
    expect(ckpt.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'Migration', uid: m.metadata.uid });
    // No token Secret: the agents prove their nodes to each other with their own tokens.
    expect((await h.core.listNamespacedSecret({ namespace: DEFAULT_OPERATOR_NAMESPACE })).items).toEqual([]);

    // Nothing new: no write.
    const rv = m.metadata.resourceVersion;
    await mig.reconcile('default/m1');
    expect((await get()).metadata.resourceVersion).toBe(rv);

    await ckpts.reconcile('default/m1');
    await agentCaptured(h, 'm1');
    await ckpts.reconcile('default/m1');
    await mig.reconcile('default/m1');
    m = await get();
    expect(m.status?.phase).toBe('Restoring');
    expect(reason(m, 'Checkpointed')).toBe('True/Captured');
    const restore = await h.restores.get('default', 'm1');
    expect(restore.spec.target.newPod).toEqual({ name: targetPodName(m), nodeName: 'n2' });

    const pod = await targetRuns(m);
    // The Restore is Scheduled, not yet Replayed: the source stays.
    await mig.reconcile('default/m1');
    expect((await get()).status?.phase).toBe('Restoring');
    expect(await podAlive(h, 'src')).toBe(true);

    await agentReplayed(h, 'm1');
    await restores.reconcile('default/m1');
    clock = new Date(clock.getTime() + 50);
    expect(await podAlive(h, 'src')).toBe(true);
    await mig.reconcile('default/m1');
    m = await get();
    expect(m.status?.phase).toBe('Finishing');
    expect(reason(m, 'Restored')).toBe('True/Replayed');
    expect(await podAlive(h, 'src')).toBe(false);
    expect(await podAlive(h, pod)).toBe(true);

    await kubeletConfirmsDeletion(h, 'src');
    await mig.reconcile('default/m1');
    m = await get();
    expect(m.status?.phase).toBe('Succeeded');
    expect(reason(m, 'Ready')).toBe('True/Migrated');
    expect(reason(m, 'SourceDeleted')).toBe('True/SourceDeleted');
    expect(m.status?.timings).toMatchObject({
      freezeMs: 3,
      captureMs: 2,
      transferMs: 7,
      restoreMs: 4,
      downtimeMs: 53,
    });
    // The migrated pod outlives the Migration.
    const target = await h.core.readNamespacedPod({ name: pod, namespace: 'default' });
    expect(target.metadata?.ownerReferences ?? []).toEqual([]);
    expect(target.spec?.nodeName).toBe('n2');
  });

  it('honours spec.targetNode and refuses an unusable one without creating anything', async () => {
    const n3 = await h.core.createNode({ body: { metadata: { name: 'n3' }, spec: { unschedulable: true } } });
    expect(n3.metadata?.name).toBe('n3');
    await createMigration(h, 'm1', { podName: 'src', targetNode: 'n3' });
    await mig.reconcile('default/m1');
    const m = await get();
    expect(m.status?.phase).toBe('Failed');
    expect(reason(m, 'Ready')).toBe('False/NoTargetNode');
    expect(m.status?.rollbackReason).toContain('cordoned');
    await expect(h.checkpoints.get('default', 'm1')).rejects.toThrow();
  });

  it('fails at once when the pod does not exist, and on an invalid spec', async () => {
    await createMigration(h, 'm1', { podName: 'nope' });
    await mig.reconcile('default/m1');
    expect(reason(await get(), 'Ready')).toBe('False/SourcePodNotFound');
    await createMigration(h, 'm2', { podName: 'src', targetNode: 'Bad_Node' });
    await expect(mig.reconcile('default/m2')).rejects.toBeInstanceOf(TerminalError);
    expect(reason(await get('m2'), 'InvalidSpec')).toBe('True/InvalidSpec');
  });
});

describe('MigrationReconciler, rollback', () => {
  it('a failed capture: the source is thawed and stays, Failed with the reason', async () => {
    await createMigration(h, 'm1', { podName: 'src' });
    await mig.reconcile('default/m1');
    await ckpts.reconcile('default/m1');
    await agentCaptured(h, 'm1', false);
    await ckpts.reconcile('default/m1');
    await mig.reconcile('default/m1');
    let m = await get();
    expect(m.status?.phase).toBe('RollingBack');
    expect((await h.checkpoints.get('default', 'm1')).metadata.annotations?.[THAW_ANNOTATION]).toBe('true');
    await mig.reconcile('default/m1');
    expect((await get()).status?.phase).toBe('RollingBack');
    await agentThawed(h, 'm1');
    await mig.reconcile('default/m1');
    m = await get();
    expect(m.status?.phase).toBe('Failed');
    expect(reason(m, 'Ready')).toBe('False/CheckpointFailed');
    expect(reason(m, 'RolledBack')).toBe('True/CheckpointFailed');
    // The Checkpoint's own reason, which decides whether a drain retries.
    expect(reason(m, 'Checkpointed')).toBe('False/UnsupportedFds');
    expect(m.status?.rollbackReason).toContain('unlinked file');
    expect(await podAlive(h, 'src')).toBe(true);
  });

  it('a corrupted image: the target pod is deleted, the source thawed and kept', async () => {
    const m0 = await throughCapture();
    const pod = await targetRuns(m0);
    await agentReplayed(
      h,
      'm1',
      'ChecksumMismatch',
      'GET http://n1/v1/images/default/m1: sha256 aaaa, the Checkpoint says bbbb',
    );
    await restores.reconcile('default/m1');
    await mig.reconcile('default/m1');
    expect(await podAlive(h, pod)).toBe(false);
    await expect(h.restores.get('default', 'm1')).rejects.toThrow();
    await agentThawed(h, 'm1');
    await mig.reconcile('default/m1');
    const m = await get();
    expect(m.status?.phase).toBe('Failed');
    expect(reason(m, 'Ready')).toBe('False/ChecksumMismatch');
    expect(m.status?.rollbackReason).toContain('sha256');
    expect(await podAlive(h, 'src')).toBe(true);
  });

  it('the target node gone mid-restore', async () => {
    const m0 = await throughCapture();
    await restores.reconcile('default/m1');
    await h.core.deleteNode({ name: 'n2' });
    await mig.reconcile('default/m1');
    await agentThawed(h, 'm1');
    await mig.reconcile('default/m1');
    const m = await get();
    expect(m.status?.phase).toBe('Failed');
    expect(reason(m, 'Ready')).toBe('False/TargetNodeGone');
    expect(await podAlive(h, targetPodName(m0))).toBe(false);
    expect(await podAlive(h, 'src')).toBe(true);
  });

  it('a target that never replays (its agent died mid-transfer) times out', async () => {
    await throughCapture();
    await targetRuns(await get());
    clock = new Date(clock.getTime() + 301_000);
    await mig.reconcile('default/m1');
    await agentThawed(h, 'm1');
    await mig.reconcile('default/m1');
    const m = await get();
    expect(reason(m, 'Ready')).toBe('False/Timeout');
    expect(await podAlive(h, 'src')).toBe(true);
  });

  it('waits for the source agent to thaw before declaring Failed', async () => {
    await throughCapture();
    await h.restores.delete(await h.restores.get('default', 'm1'));
    await mig.reconcile('default/m1');
    const m = await get();
    expect(m.status?.phase).toBe('RollingBack');
    expect(reason(m, 'RolledBack')).toBe('Unknown/RestoreGone');
    expect(m.status?.conditions?.find((c) => c.type === 'RolledBack')?.message).toContain('thaw');
  });
});
