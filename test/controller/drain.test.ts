/**
 * The drain watcher against the API double: a cordoned or NoExecute-tainted
 * node gets Migrations for its annotated running pods, no more than the
 * concurrency limit at a time, one per pod; a failed one is retried as a new
 * Migration after a growing backoff, a bounded number of times, unless its
 * reason says a retry cannot help. Time is a clock the test moves: no waiting.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { Condition, Migration } from '../../src/api/index.js';
import { MIGRATE_ON_DRAIN } from '../../src/api/index.js';
import type { DrainReconcilerDeps } from '../../src/controller/drain/reconciler.js';
import {
  DRAIN_NODE_LABEL,
  DRAIN_POD_UID_ANNOTATION,
  DrainReconciler,
  drainMigrationName,
} from '../../src/controller/drain/reconciler.js';
import { DRAIN_ATTEMPT_LABEL, DRAIN_GAVE_UP_ANNOTATION } from '../../src/controller/drain/retry.js';
import { MemoryEventRecorder, apiEventRecorder } from '../../src/kube/events.js';
import { silentLogger } from '../../src/kube/log.js';
import { until } from '../support/until.js';
import type { MigrationHarness } from './migration-support.js';
import { startMigrationHarness } from './migration-support.js';
import { makePod } from './support.js';

let h: MigrationHarness;
let drain: DrainReconciler;
let events: MemoryEventRecorder;
let clock: Date;

/** A reconciler as the controller builds it; a new one is a restarted controller (no memory). */
function reconciler(overrides: Partial<DrainReconcilerDeps> = {}): DrainReconciler {
  return new DrainReconciler({
    core: h.core,
    migrations: h.migrations,
    events,
    maxConcurrent: 1,
    now: () => clock,
    retry: { retries: 2, backoffMs: 1_000, maxBackoffMs: 1_500 },
    ...overrides,
  });
}

beforeEach(async () => {
  h = await startMigrationHarness();
  events = new MemoryEventRecorder();
  clock = new Date('2026-01-01T00:00:00.000Z');
  drain = reconciler();
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
const of = async (pod: string): Promise<Migration[]> =>
  (await migrations())
    .filter((m) => m.spec.podName === pod)
    .sort((x, y) =>
      (x.metadata.labels?.[DRAIN_ATTEMPT_LABEL] ?? '').localeCompare(
        y.metadata.labels?.[DRAIN_ATTEMPT_LABEL] ?? '',
      ),
    );

async function finish(m: Migration): Promise<void> {
  await h.migrations.replaceStatus({ ...m, status: { phase: 'Succeeded' } });
}

const condition = (type: string, status: 'True' | 'False', reason: string): Condition => ({
  type,
  status,
  reason,
  message: `${type} ${reason}`,
  lastTransitionTime: '2026-01-01T00:00:00Z',
});

/** What the Migration reconciler leaves after a rollback, ending now (by the test's clock). */
async function fail(m: Migration, reason: string, checkpointed?: string): Promise<void> {
  const conditions = [condition('Ready', 'False', reason)];
  if (checkpointed) conditions.push(condition('Checkpointed', 'False', checkpointed));
  await h.migrations.replaceStatus({
    ...m,
    status: {
      phase: 'Failed',
      startedAt: clock.toISOString(),
      timings: { totalMs: 0 },
      rollbackReason: `${reason}: it went wrong`,
      conditions,
    },
  });
}

async function cordon(on = true): Promise<void> {
  const n1 = await h.core.readNode({ name: 'n1' });
  await h.core.replaceNode({ name: 'n1', body: { ...n1, spec: { unschedulable: on } } });
}

const later = (ms: number): void => {
  clock = new Date(clock.getTime() + ms);
};

const told = (reason: string): string[] =>
  events.events.filter((e) => e.reason === reason).map((e) => `${e.kind ?? ''}/${e.name}`);

describe('DrainReconciler', () => {
  it('does nothing while the node is schedulable', async () => {
    expect(await drain.reconcile('n1')).toEqual({});
    expect(await migrations()).toEqual([]);
  });

  it('on cordon, migrates the annotated pods one at a time', async () => {
    await cordon();
    const first = await drain.reconcile('n1');
    expect(first.requeueAfterMs).toBeGreaterThan(0);
    let ms = await migrations();
    expect(ms.map((m) => m.spec.podName)).toHaveLength(1);
    expect(ms[0]?.metadata.labels?.[DRAIN_NODE_LABEL]).toBe('n1');
    // The slot is taken: nothing more, and no duplicate.
    await drain.reconcile('n1');
    expect(await migrations()).toHaveLength(1);
    await finish(ms[0]!);
    // The second pod's Migration is made; the watcher looks again for its outcome.
    expect((await drain.reconcile('n1')).requeueAfterMs).toBeGreaterThan(0);
    ms = await migrations();
    expect(ms.map((m) => m.spec.podName).sort()).toEqual(['a', 'b']);
    await finish(ms.find((m) => m.status?.phase !== 'Succeeded')!);
    // Every annotated pod has moved: nothing more, ever.
    expect(await drain.reconcile('n1')).toEqual({});
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

  it('two nodes drained at once share the limit', async () => {
    await makePod(h, 'c', { node: 'n2', phase: 'Running' });
    const pod = await h.core.readNamespacedPod({ name: 'c', namespace: 'default' });
    await h.core.replaceNamespacedPod({
      name: 'c',
      namespace: 'default',
      body: { ...pod, metadata: { ...pod.metadata, annotations: { [MIGRATE_ON_DRAIN]: 'true' } } },
    });
    await cordon();
    const n2 = await h.core.readNode({ name: 'n2' });
    await h.core.replaceNode({ name: 'n2', body: { ...n2, spec: { unschedulable: true } } });
    // The controller's two workers take the two node keys together.
    await Promise.all([drain.reconcile('n1'), drain.reconcile('n2')]);
    expect(await migrations()).toHaveLength(1);
  });

  it('names fit a label value (63 characters), one per pod UID and attempt', () => {
    const pod = { metadata: { name: `${'x'.repeat(39)}.y.z`, uid: '0123abcd-0000-0000-0000-000000000000' } };
    expect(drainMigrationName(pod)).toBe(`drain-${'x'.repeat(39)}-0123abcd`);
    expect(drainMigrationName(pod, 12)).toBe(`drain-${'x'.repeat(39)}-0123abcd-12`);
    expect(
      drainMigrationName({ metadata: { name: 'p'.repeat(250), uid: 'u' } }, 99).length,
    ).toBeLessThanOrEqual(63);
  });
});

describe('DrainReconciler retries', () => {
  beforeEach(async () => {
    drain = reconciler({ maxConcurrent: 5 });
    await cordon();
    await drain.reconcile('n1');
  });

  it('retries a failed migration as a new Migration after a growing backoff, then gives up', async () => {
    const pod = await h.core.readNamespacedPod({ name: 'a', namespace: 'default' });
    const [first] = await of('a');
    expect(first?.metadata.name).toBe(drainMigrationName(pod));
    await fail(first!, 'Timeout');
    // Not before the backoff (1 s after the first failure); the watcher says when to look again.
    expect((await drain.reconcile('n1')).requeueAfterMs).toBe(1_000);
    expect(await of('a')).toHaveLength(1);
    later(1_000);
    // A restarted controller (a new reconciler, no memory) goes on from the Migrations.
    drain = reconciler({ maxConcurrent: 5 });
    await drain.reconcile('n1');
    let tries = await of('a');
    expect(tries.map((m) => m.metadata.name)).toEqual([drainMigrationName(pod), drainMigrationName(pod, 2)]);
    expect(tries[1]?.metadata.labels?.[DRAIN_ATTEMPT_LABEL]).toBe('2');
    expect(tries[1]?.metadata.annotations?.[DRAIN_POD_UID_ANNOTATION]).toBe(pod.metadata?.uid);
    expect(tries[0]?.status?.phase).toBe('Failed'); // kept, with its status and events
    expect(told('DrainMigrationRetry')).toEqual([
      `Migration/${drainMigrationName(pod, 2)}`,
      'Pod/a',
      'Node/n1',
    ]);
    // No duplicate on the next reconcile.
    await drain.reconcile('n1');
    expect(await of('a')).toHaveLength(2);

    await fail(tries[1]!, 'TargetNodeGone');
    // Doubled to 2 s, capped at 1.5 s.
    expect((await drain.reconcile('n1')).requeueAfterMs).toBe(1_500);
    later(1_500);
    await drain.reconcile('n1');
    tries = await of('a');
    expect(tries).toHaveLength(3);

    // Two retries spent: the third failure is the last.
    await fail(tries[2]!, 'Unreachable');
    later(60_000);
    await drain.reconcile('n1');
    await drain.reconcile('n1');
    tries = await of('a');
    expect(tries).toHaveLength(3);
    expect(tries[2]?.metadata.annotations?.[DRAIN_GAVE_UP_ANNOTATION]).toContain('3 attempt(s) failed');
    expect(told('DrainMigrationGaveUp')).toEqual(['Pod/a', 'Node/n1']); // said once
  });

  it.each([
    ['leaks with leakPolicy Fail', 'final', 'CheckpointFailed', 'LeaksFound'],
    ['unsupported fds', 'final', 'CheckpointFailed', 'UnsupportedFds'],
    ['an invalid spec', 'final', 'InvalidSpec', undefined],
    ['a replay the target refused', 'final', 'ReplayFailed', undefined],
    ['a capture error', 'retried', 'CheckpointFailed', 'CaptureFailed'],
    ['a cut transfer', 'retried', 'Truncated', undefined],
    ['a timeout', 'retried', 'Timeout', undefined],
  ] as const)('after %s: %s', async (_what, verdict, reason, checkpointed) => {
    await fail((await of('a'))[0]!, reason, checkpointed);
    later(1_000);
    await drain.reconcile('n1');
    const retried = verdict === 'retried';
    expect(await of('a')).toHaveLength(retried ? 2 : 1);
    expect(told('DrainMigrationGaveUp')).toEqual(retried ? [] : ['Pod/a', 'Node/n1']);
    if (!retried)
      expect((await of('a'))[0]?.metadata.annotations?.[DRAIN_GAVE_UP_ANNOTATION]).toContain(
        `${reason}${checkpointed ? ` (${checkpointed})` : ''} is not retried`,
      );
  });

  it('retries only while the node drains and the pod still runs on it', async () => {
    await fail((await of('a'))[0]!, 'Timeout');
    later(10_000);
    await cordon(false);
    expect(await drain.reconcile('n1')).toEqual({});
    expect(await of('a')).toHaveLength(1);
    await cordon(true);
    await h.core.deleteNamespacedPod({ name: 'a', namespace: 'default', gracePeriodSeconds: 0 });
    await drain.reconcile('n1');
    expect(await of('a')).toHaveLength(1);
    expect(told('DrainMigrationRetry')).toEqual([]);
    expect(told('DrainMigrationGaveUp')).toEqual([]);
  });

  it('a retry waits for a free slot', async () => {
    drain = reconciler({ maxConcurrent: 1 });
    // Both pods got their first Migration (limit 5 then); with 1, b's running one holds the slot.
    await fail((await of('a'))[0]!, 'Timeout');
    later(1_000);
    expect((await drain.reconcile('n1')).requeueAfterMs).toBeGreaterThan(0);
    expect(await of('a')).toHaveLength(1);
    await finish((await of('b'))[0]!);
    await drain.reconcile('n1');
    expect(await of('a')).toHaveLength(2);
  });

  it('tells the pod and the node through core/v1 Events that name them', async () => {
    drain = reconciler({
      maxConcurrent: 5,
      events: apiEventRecorder(h.core, 'fdckpt-controller', silentLogger),
    });
    await fail((await of('a'))[0]!, 'Timeout');
    later(1_000);
    await drain.reconcile('n1');
    const involved = await until('the retry events', async () => {
      const items = (await h.core.listEventForAllNamespaces()).items.filter(
        (e) => e.reason === 'DrainMigrationRetry',
      );
      return items.length === 3 ? items.map((e) => e.involvedObject) : undefined;
    });
    expect(involved.map((o) => `${o.apiVersion ?? ''} ${o.kind ?? ''} ${o.name ?? ''}`).sort()).toEqual([
      `fdckpt.io/v1alpha1 Migration ${(await of('a'))[1]?.metadata.name ?? ''}`,
      'v1 Node n1',
      'v1 Pod a',
    ]);
  });

  it('--drain-retries 0: a failure is final, and said so', async () => {
    drain = reconciler({ retry: { retries: 0 } });
    await fail((await of('a'))[0]!, 'Timeout');
    later(3_600_000);
    await drain.reconcile('n1');
    expect(await of('a')).toHaveLength(1);
    expect(told('DrainMigrationGaveUp')).toEqual(['Pod/a', 'Node/n1']);
  });
});
