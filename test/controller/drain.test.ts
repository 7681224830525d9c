/**
 * The drain watcher against the API double: a cordoned or NoExecute-tainted
 * node gets Migrations for its annotated running pods, no more than the
 * concurrency limit at a time, one per pod.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { Migration } from '../../src/api/index.js';
import { MIGRATE_ON_DRAIN } from '../../src/api/index.js';
import { DRAIN_NODE_LABEL, DrainReconciler } from '../../src/controller/drain.js';
import { MemoryEventRecorder } from '../../src/controller/events.js';
import type { MigrationHarness } from './migration-support.js';
import { startMigrationHarness } from './migration-support.js';
import { makePod } from './support.js';

let h: MigrationHarness;
let drain: DrainReconciler;

beforeEach(async () => {
  h = await startMigrationHarness();
  drain = new DrainReconciler({
    core: h.core,
    migrations: h.migrations,
    events: new MemoryEventRecorder(),
    maxConcurrent: 1,
  });
  for (const name of ['a', 'b', 'plain']) {
    await makePod(h, name, { node: 'n1', phase: 'Running' });
    if (name !== 'plain') {
      const pod = await h.core.readNamespacedPod({ name, namespace: 'default' });
      await h.core.replaceNamespacedPod({
        name,
        namespace: 'default',
        body: { ...pod, metadata: { ...pod.metadata, annotations: { [MIGRATE_ON_DRAIN]: 'true' } } },
      });
    }
  }
  await makePod(h, 'elsewhere', { node: 'n2', phase: 'Running' });
});
afterEach(async () => {
  await h.close();
});

const migrations = async (): Promise<Migration[]> => (await h.migrations.listAll()).items;

async function finish(m: Migration): Promise<void> {
  await h.migrations.replaceStatus({ ...m, status: { phase: 'Succeeded' } });
}

describe('DrainReconciler', () => {
  it('does nothing while the node is schedulable', async () => {
    expect(await drain.reconcile('n1')).toEqual({});
    expect(await migrations()).toEqual([]);
  });

  it('on cordon, migrates the annotated pods one at a time', async () => {
    const n1 = await h.core.readNode({ name: 'n1' });
    await h.core.replaceNode({ name: 'n1', body: { ...n1, spec: { unschedulable: true } } });
    const first = await drain.reconcile('n1');
    expect(first.requeueAfterMs).toBeGreaterThan(0);
    let ms = await migrations();
    expect(ms.map((m) => m.spec.podName)).toHaveLength(1);
    expect(ms[0]?.metadata.labels?.[DRAIN_NODE_LABEL]).toBe('n1');
    // The slot is taken: nothing more, and no duplicate.
    await drain.reconcile('n1');
    expect(await migrations()).toHaveLength(1);
    await finish(ms[0]!);
    expect(await drain.reconcile('n1')).toEqual({});
    ms = await migrations();
    expect(ms.map((m) => m.spec.podName).sort()).toEqual(['a', 'b']);
    await finish(ms.find((m) => m.status?.phase !== 'Succeeded')!);
    // Every annotated pod has had its Migration: nothing more, ever.
    await drain.reconcile('n1');
    expect(await migrations()).toHaveLength(2);
  });

  it('on a NoExecute taint too', async () => {
    const n1 = await h.core.readNode({ name: 'n1' });
    await h.core.replaceNode({
      name: 'n1',
      body: { ...n1, spec: { taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }] } },
    });
    await drain.reconcile('n1');
    expect(await migrations()).toHaveLength(1);
  });
});
