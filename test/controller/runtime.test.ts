/** The controller machinery against the API double: informer relist on 410, leader election, health and metrics. */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api } from '@kubernetes/client-node';
import type { Checkpoint } from '../../src/api/index.js';
import { Informer } from '../../src/kube/informer.js';
import { LeaderElector } from '../../src/kube/leader-election.js';
import { silentLogger } from '../../src/kube/log.js';
import { startController } from '../../src/controller/manager.js';
import type { Harness } from './support.js';
import { createCheckpoint, startHarness } from './support.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

async function until(what: string, probe: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('Informer', () => {
  it('lists, follows the watch, and hands out frozen objects', async () => {
    const kc = h.kc;
    const informer = new Informer<Checkpoint>(
      kc,
      { list: () => h.checkpoints.listAll(), watchPath: h.checkpoints.watchPath },
      silentLogger,
      { minBackoffMs: 20 },
    );
    const seen: string[] = [];
    informer.on({
      add: (o) => seen.push(`add ${o.metadata.name ?? ''}`),
      delete: (o) => seen.push(`delete ${o.metadata.name ?? ''}`),
    });
    await createCheckpoint(h, 'before', { podName: 'p' });
    await informer.start();
    expect(informer.get('default/before')).toBeDefined();
    expect(Object.isFrozen(informer.get('default/before'))).toBe(true);
    await createCheckpoint(h, 'during', { podName: 'p' });
    await until('the watch event', () => informer.get('default/during') !== undefined);

    await informer.stop();
    expect(seen).toEqual(['add before', 'add during']);
  });

  it('relists when its resourceVersion is gone (410), and reports what changed meanwhile', async () => {
    const kc = h.kc;
    await createCheckpoint(h, 'stale', { podName: 'p' });
    await createCheckpoint(h, 'kept', { podName: 'p' });
    await h.cluster.compact();
    let calls = 0;
    const informer = new Informer<Checkpoint>(
      kc,
      {
        // The first list answers with a compacted resourceVersion (as after a long disconnect):
        // the watch from it gets 410 Gone and the informer must list again.
        list: async () => {
          const result = await h.checkpoints.listAll();
          if (++calls === 1) {
            await h.checkpoints.delete(await h.checkpoints.get('default', 'stale'));
            return { ...result, metadata: { resourceVersion: '1' } };
          }
          return result;
        },
        watchPath: h.checkpoints.watchPath,
      },
      silentLogger,
      { minBackoffMs: 20 },
    );
    const events: string[] = [];
    informer.on({
      add: (o) => events.push(`add ${o.metadata.name ?? ''}`),
      delete: (o) => events.push(`delete ${o.metadata.name ?? ''}`),
    });
    await informer.start();
    await until('the relist', () => informer.lists === 2);
    await until('the deletion', () => informer.get('default/stale') === undefined);
    expect(events).toEqual(['add kept', 'add stale', 'delete stale']);
    await createCheckpoint(h, 'after', { podName: 'p' });
    await until('the watch after the relist', () => informer.get('default/after') !== undefined);
    await informer.stop();
  });
});

describe('LeaderElector', () => {
  it('one of two candidates leads; the other takes over when the leader releases', async () => {
    const kc = h.kc;
    const api = kc.makeApiClient(CoordinationV1Api);
    const opts = {
      api,
      namespace: 'default',
      name: 'lease',
      log: silentLogger,
      leaseDurationSeconds: 1,
      retryPeriodMs: 50,
      renewDeadlineMs: 500,
    };
    const a = new LeaderElector({ ...opts, identity: 'a' });
    const b = new LeaderElector({ ...opts, identity: 'b' });
    expect(await a.acquire(() => {})).toBe(true);
    let bLeads = false;
    const bDone = b.acquire(() => {}).then((ok) => (bLeads = ok));
    await new Promise((r) => setTimeout(r, 300));
    expect(bLeads).toBe(false);
    expect(
      (await api.readNamespacedLease({ name: 'lease', namespace: 'default' })).spec?.holderIdentity,
    ).toBe('a');
    await a.stop();
    await bDone;
    expect(bLeads).toBe(true);
    const lease = await api.readNamespacedLease({ name: 'lease', namespace: 'default' });
    expect(lease.spec?.holderIdentity).toBe('b');
    expect(lease.spec?.leaseTransitions).toBe(1);
    await b.stop();
  });
});

describe('controller process', () => {
  it('serves /healthz, /readyz and /metrics, and shuts down gracefully', async () => {
    const kc = h.kc;
    const c = await startController({ kc, log: silentLogger, port: 0, launcher: { image: 'x' } });
    const base = `http://127.0.0.1:${c.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    await until('ready', async () => (await fetch(`${base}/readyz`)).status === 200);
    await createCheckpoint(h, 'c', { podName: 'nopod' });
    await until('a reconcile', async () =>
      (await (await fetch(`${base}/metrics`)).text()).includes(
        'fdckpt_reconcile_total{kind="Checkpoint",outcome="success"}',
      ),
    );
    const text = await (await fetch(`${base}/metrics`)).text();
    for (const name of [
      'fdckpt_reconcile_duration_seconds',
      'fdckpt_workqueue_depth',
      'fdckpt_checkpoint_duration_seconds',
      'fdckpt_restore_duration_seconds',
      'fdckpt_fds_captured_total',
      'fdckpt_leaks_total',
    ]) {
      expect(text).toContain(name);
    }
    await c.stop();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});

describe('two controller replicas', () => {
  it('only the leader reconciles; the standby takes over when the leader stops', async () => {
    const kc = h.kc;
    const lease = {
      namespace: 'default',
      name: 'fdckpt-controller',
      leaseDurationSeconds: 1,
      retryPeriodMs: 100,
    };
    const a = await startController({
      kc,
      log: silentLogger,
      port: 0,
      launcher: { image: 'x' },
      lease: { ...lease, identity: 'a' },
    });
    await until('a leads', () => a.isLeader());
    const b = await startController({
      kc,
      log: silentLogger,
      port: 0,
      launcher: { image: 'x' },
      lease: { ...lease, identity: 'b' },
    });
    await createCheckpoint(h, 'one', { podName: 'nopod' });
    await until(
      'a reconciled',
      async () => (await h.checkpoints.get('default', 'one')).status?.phase === 'Pending',
    );
    expect(b.isLeader()).toBe(false);
    // The standby is ready (waiting for the lease is its job) but has reconciled nothing.
    expect((await fetch(`http://127.0.0.1:${b.port}/readyz`)).status).toBe(200);
    expect(await b.metrics.registry.getSingleMetricAsString('fdckpt_reconcile_total')).not.toContain(
      'kind="Checkpoint"',
    );
    await a.stop();
    await until('b leads', () => b.isLeader());
    await createCheckpoint(h, 'two', { podName: 'nopod' });
    await until(
      'b reconciled',
      async () => (await h.checkpoints.get('default', 'two')).status?.phase === 'Pending',
    );
    await b.stop();
  });
});
