/**
 * The reconcilers' status writes against a real kube-apiserver: a reconcile that
 * finds nothing new sends no write at all (not even one the server would take as a
 * no-op and answer with the same resourceVersion), and the agent's write redoes its
 * change on a fresh read when another writer got in first.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Checkpoint, Migration, Restore } from '../../src/api/index.js';
import { CHECKPOINT, MIGRATION, RESTORE } from '../../src/api/index.js';
import { CheckpointReconciler } from '../../src/controller/checkpoint.js';
import { MemoryEventRecorder } from '../../src/kube/events.js';
import type { Resource } from '../../src/kube/client.js';
import { ResourceClient } from '../../src/kube/client.js';
import { MigrationReconciler } from '../../src/controller/migration/reconciler.js';
import { RestoreReconciler } from '../../src/controller/restore.js';
import { StatusDraft, saveStatus, updateStatus } from '../../src/kube/status.js';
import type { MigrationHarness } from './migration-support.js';
import { createMigration, startMigrationHarness } from './migration-support.js';
import { agentReportsCaptured, createCheckpoint, createRestore, makePod, reason } from './support.js';

/** The real client, counting the status writes it sends. */
class Counting<T extends Resource> extends ResourceClient<T> {
  writes = 0;
  override async replaceStatus(obj: T): Promise<T> {
    this.writes++;
    return super.replaceStatus(obj);
  }
}

/** The real client; after its first read, another writer changes the object. */
class Racing extends ResourceClient<Checkpoint> {
  private raced = false;
  override async get(namespace: string, name: string): Promise<Checkpoint> {
    const obj = await super.get(namespace, name);
    if (!this.raced) {
      this.raced = true;
      await h.checkpoints.replaceStatus({ ...obj, status: { ...obj.status, podUID: 'u' } });
    }
    return obj;
  }
}

let h: MigrationHarness;
beforeAll(async () => {
  h = await startMigrationHarness();
}, 120_000);
afterAll(async () => {
  await h.close();
});

const rv = async (name: string): Promise<string | undefined> =>
  (await h.checkpoints.get('default', name)).metadata.resourceVersion;

describe('a reconcile with nothing new writes nothing', () => {
  it('a Checkpoint waiting for its pod', async () => {
    const checkpoints = new Counting<Checkpoint>(h.custom, CHECKPOINT);
    const events = new MemoryEventRecorder();
    const r = new CheckpointReconciler({ checkpoints, core: h.core, events });
    await createCheckpoint(h, 'waits', { podName: 'not-yet' });
    await r.reconcile('default/waits');
    expect(checkpoints.writes).toBe(1);
    const told = events.events.length;
    const before = await rv('waits');
    await r.reconcile('default/waits');
    await r.reconcile('default/waits');
    expect(checkpoints.writes).toBe(1);
    expect(await rv('waits')).toBe(before);
    expect(events.events.length).toBe(told);
  });

  it('a Ready Checkpoint judged again', async () => {
    const checkpoints = new Counting<Checkpoint>(h.custom, CHECKPOINT);
    const r = new CheckpointReconciler({ checkpoints, core: h.core, events: new MemoryEventRecorder() });
    await makePod(h, 'runs', { node: 'n1', phase: 'Running' });
    await createCheckpoint(h, 'ready', { podName: 'runs' });
    await r.reconcile('default/ready');
    await agentReportsCaptured(h, 'ready', {
      totalFds: 3,
      totalProcesses: 1,
      image: { node: 'n1', path: '/var/lib/fdckpt/r.img', size: 10, sha256: 'c'.repeat(64) },
    });
    await r.reconcile('default/ready');
    expect(reason(await h.checkpoints.get('default', 'ready'), 'Ready')).toBe('True/Captured');
    const writes = checkpoints.writes;
    await r.reconcile('default/ready');
    expect(checkpoints.writes).toBe(writes);
  });

  it('a Restore waiting for its Checkpoint', async () => {
    const restores = new Counting<Restore>(h.custom, RESTORE);
    const r = new RestoreReconciler({
      restores,
      checkpoints: h.checkpoints,
      core: h.core,
      events: new MemoryEventRecorder(),
      launcher: { image: 'fdckpt:test', hostPath: '/usr/local/bin/fdckpt-hold' },
    });
    await createRestore(h, 'waits', { checkpointName: 'nothing', target: { newPod: {} } });
    await r.reconcile('default/waits');
    await r.reconcile('default/waits');
    await r.reconcile('default/waits');
    expect(reason(await h.restores.get('default', 'waits'), 'Ready')).toBe('False/CheckpointNotFound');
    expect(restores.writes).toBe(1);
  });

  it('a Migration waiting for its source pod to run', async () => {
    const migrations = new Counting<Migration>(h.custom, MIGRATION);
    const r = new MigrationReconciler({ ...h, migrations, events: new MemoryEventRecorder(), pollMs: 10 });
    await makePod(h, 'starting', { node: 'n1', phase: 'Pending' });
    await createMigration(h, 'waits', { podName: 'starting' });
    await r.reconcile('default/waits');
    await r.reconcile('default/waits');
    await r.reconcile('default/waits');
    expect(reason(await h.migrations.get('default', 'waits'), 'Ready')).toBe('False/SourceNotRunning');
    expect(migrations.writes).toBe(1);
  });
});

describe('the write itself', () => {
  it('a draft made stale by another writer is refused (409), and updateStatus redoes its change', async () => {
    await createCheckpoint(h, 'raced', { podName: 'p' });
    const read = await h.checkpoints.get('default', 'raced');
    const stale = new StatusDraft(read);
    stale.status.phase = 'Pending';
    // Another writer (the controller, say) in between.
    await h.checkpoints.replaceStatus({ ...read, status: { nodeName: 'n1' } });
    await expect(saveStatus(h.checkpoints, stale)).rejects.toMatchObject({ code: 409 });

    // Another writer gets in between updateStatus's first read and its write.
    const racing = new Racing(h.custom, CHECKPOINT);
    let calls = 0;
    const written = await updateStatus(
      racing,
      'default',
      'raced',
      (d) => {
        calls++;
        d.setCondition({ type: 'Captured', status: 'True', reason: 'Captured', message: 'ok' });
        d.status.totalFds = 4;
      },
      { generation: 1 },
    );
    expect(calls).toBe(2);
    expect(written.status).toMatchObject({ nodeName: 'n1', podUID: 'u', totalFds: 4 });
    expect(reason(written, 'Captured')).toBe('True/Captured');
    expect(written.status?.conditions?.[0]?.observedGeneration).toBe(1);

    // Nothing to change: nothing written.
    const counting = new Counting<Checkpoint>(h.custom, CHECKPOINT);
    const same = await updateStatus(counting, 'default', 'raced', (d) => {
      d.status.totalFds = 4;
    });
    expect(counting.writes).toBe(0);
    expect(same.metadata.resourceVersion).toBe(written.metadata.resourceVersion);
  });
});
