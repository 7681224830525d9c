/**
 * Migration end to end on the local control plane with two nodes: two process
 * kubelets, two agents (real engine, separate data dirs, image transfer over
 * HTTP between them), the controller; Migrations applied with kubectl. The
 * new process on node 2 must have the saved table, and the source pod must be
 * gone only afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Checkpoint, Restore } from '../../src/api/index.js';
import {
  MIGRATE_ON_DRAIN,
  TRANSFER_CERT_ANNOTATION,
  TRANSFER_ENDPOINT_ANNOTATION,
} from '../../src/api/index.js';
import { certSha256 } from '../../src/tls/x509.js';
import { findPodCgroup, isFrozen } from '../../src/agent/cgroup/index.js';
import { sample, samples, scrape } from '../support/metrics.js';
import type { TwoNodes } from '../support/twonodes.js';
import { WARNING_EVENTS, warningsAbout } from '../support/kubectl.js';
import { expectMigratedTable } from './tables.js';
import {
  barePod,
  fdTable,
  finished,
  kubectl,
  podGone,
  sleepOf,
  startTwoNodes,
  until,
} from '../support/twonodes.js';

let t: TwoNodes;

beforeAll(async () => {
  t = await startTwoNodes();
}, 60_000);

afterAll(async () => {
  await t?.stop();
});

describe('migration on two local nodes', () => {
  it('moves a bare pod from node 1 to node 2 with its fd table (kubectl apply)', async () => {
    const [n1, n2] = t.cp.nodes.map((n) => n.name);
    const data = join(t.tmp, 'data.txt');
    writeFileSync(data, 'hello\n');
    await barePod(t, 'bare', n1!, `exec 3<${data} 4>>${join(t.tmp, 'out.log')}; exec sleep 1000`);
    const pid = await sleepOf(t, 'bare');
    const table = fdTable(pid);
    // Watch the source: when it starts to go, the Restore must already be Ready.
    let restoreWhenSourceWent: string | undefined;
    const watching = until(
      'the source pod going',
      async () => {
        const pod = await t.c.core
          .readNamespacedPod({ name: 'bare', namespace: 'default' })
          .catch(() => undefined);
        if (pod && !pod.metadata?.deletionTimestamp) return undefined;
        const r = (await t.c.custom
          .getNamespacedCustomObject({
            group: 'fdckpt.io',
            version: 'v1alpha1',
            namespace: 'default',
            plural: 'restores',
            name: 'bare',
          })
          .catch(() => undefined)) as Restore | undefined;
        restoreWhenSourceWent = r?.status?.phase ?? 'absent';
        return true;
      },
      120_000,
    );
    await kubectl(
      t,
      `apiVersion: fdckpt.io/v1alpha1\nkind: Migration\nmetadata: {name: bare, namespace: default}\nspec: {podName: bare, targetNode: ${n2!}}\n`,
      'apply',
      '-f',
      '-',
    );
    const m = await finished(t, 'bare');
    await watching;
    expect(restoreWhenSourceWent).toBe('Ready');
    expect(m.status?.conditions?.find((x) => x.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Migrated',
    });
    expect(m.status).toMatchObject({ sourceNode: n1, targetNode: n2 });
    const target = await t.c.core.readNamespacedPod({
      name: m.status?.targetPod ?? '',
      namespace: 'default',
    });
    expect(target.spec?.nodeName).toBe(n2);
    expectMigratedTable(fdTable(await sleepOf(t, m.status?.targetPod ?? '')), table);
    // The image was fetched by node 2's agent (transferMs is written only then), into its
    // own data directory, and that copy was deleted once replayed.
    const restore = (await t.c.custom.getNamespacedCustomObject({
      group: 'fdckpt.io',
      version: 'v1alpha1',
      namespace: 'default',
      plural: 'restores',
      name: 'bare',
    })) as Restore;
    expect(typeof restore.status?.durations?.transferMs).toBe('number');
    // Over TLS to node 1's pinned certificate, in one attempt, every byte once.
    const ckpt = (await t.c.custom.getNamespacedCustomObject({
      group: 'fdckpt.io',
      version: 'v1alpha1',
      namespace: 'default',
      plural: 'checkpoints',
      name: 'bare',
    })) as Checkpoint;
    expect(restore.status?.transfer).toEqual({ bytes: ckpt.status?.image?.size, attempts: 1 });
    const annotations = (await t.c.core.readNode({ name: n1 ?? '' })).metadata?.annotations ?? {};
    expect(annotations[TRANSFER_ENDPOINT_ANNOTATION]).toMatch(/^https:\/\//);
    expect(annotations[TRANSFER_CERT_ANNOTATION]).toBe(
      certSha256(readFileSync(join(t.cp.nodes[0]!.storageDir, 'tls', 'transfer.crt'), 'utf8')),
    );
    // Downtime from the agents' timestamps: the source's freeze to the target's let-go.
    const replayedAt = restore.status?.durations?.replayedAt ?? '';
    expect(m.status?.timings?.downtimeMs).toBe(Date.parse(replayedAt) - Date.parse(m.status?.frozenAt ?? ''));
    const n2images = join(t.cp.nodes[1]!.storageDir, 'images', 'default');
    expect(existsSync(n2images) ? readdirSync(n2images).filter((f) => f.startsWith('bare-')) : []).toEqual(
      [],
    );
    const n1images = join(t.cp.nodes[0]!.storageDir, 'images', 'default');
    expect(readdirSync(n1images).some((f) => f.startsWith('bare-'))).toBe(true);
    await until('source pod gone', async () => ((await podGone(t, 'bare')) ? true : undefined));
    expect(m.status?.timings?.downtimeMs).toBeGreaterThanOrEqual(0);
    const out = await kubectl(t, '', 'get', 'fdmig', 'bare');
    expect(out).toContain('Succeeded');
    // A migration that worked is told in Normal events only (InProgress used to be a Warning),
    // for the Migration and for the Checkpoint and Restore it made.
    const warnings = await kubectl(t, '', ...WARNING_EVENTS);
    expect(warningsAbout(warnings, /^(Migration|Checkpoint|Restore)\/bare/)).toEqual([]);

    // What Prometheus scrapes after it: the controller counted the Migration and its
    // downtime (the status's, in seconds); node 2's agent the image bytes it received.
    const controller = await scrape(t.controller.port);
    expect(sample(controller, 'fdckpt_migrations_total', { outcome: 'Succeeded', reason: 'Migrated' })).toBe(
      1,
    );
    expect(sample(controller, 'fdckpt_migration_downtime_seconds_count')).toBe(1);
    expect(sample(controller, 'fdckpt_migration_downtime_seconds_sum')).toBeCloseTo(
      (m.status?.timings?.downtimeMs ?? NaN) / 1000,
      6,
    );
    const [agent1, agent2] = await Promise.all(t.agents.map((a) => scrape(a.port)));
    expect(sample(agent2!, 'fdckpt_agent_transfer_bytes_total')).toBe(ckpt.status?.image?.size);
    expect(sample(agent2!, 'fdckpt_agent_transfer_retries_total')).toBe(0);
    expect(sample(agent1!, 'fdckpt_agent_transfer_bytes_total')).toBe(0);
    // The source was left frozen for the move and is gone now: nothing is held frozen.
    expect(sample(agent1!, 'fdckpt_agent_frozen_pods')).toBe(0);
    for (const text of [controller, agent1!, agent2!]) {
      expect(samples(text, 'fdckpt_build_info')).toEqual([
        {
          labels: { version: expect.stringMatching(/^\d+\.\d+\.\d+/), node_version: process.version },
          value: 1,
        },
      ]);
    }
  }, 120_000);

  it('a pod left frozen by a Checkpoint (afterCapture Stop) is counted as frozen until its thaw', async () => {
    const [n1] = t.cp.nodes.map((n) => n.name);
    writeFileSync(join(t.tmp, 'held.txt'), 'hello\n');
    await barePod(t, 'held', n1!, `exec 3<${join(t.tmp, 'held.txt')}; exec sleep 1000`);
    await sleepOf(t, 'held');
    const frozenPods = async (): Promise<number | undefined> =>
      sample(await scrape(t.agents[0]!.port), 'fdckpt_agent_frozen_pods');
    expect(await frozenPods()).toBe(0);
    await kubectl(
      t,
      'apiVersion: fdckpt.io/v1alpha1\nkind: Checkpoint\nmetadata: {name: held, namespace: default}\nspec: {podName: held, afterCapture: Stop}\n',
      'apply',
      '-f',
      '-',
    );
    const ready = await until('checkpoint held Ready', async () => {
      const c = (await t.c.custom.getNamespacedCustomObject({
        group: 'fdckpt.io',
        version: 'v1alpha1',
        namespace: 'default',
        plural: 'checkpoints',
        name: 'held',
      })) as Checkpoint;
      return c.status?.phase === 'Ready' ? c : undefined;
    });
    const pod = findPodCgroup(ready.status?.podUID ?? '').pod;
    expect(isFrozen(pod)).toBe(true);
    expect(await frozenPods()).toBe(1);
    await kubectl(t, '', 'annotate', 'checkpoint', 'held', 'fdckpt.io/thaw=true');
    await until('pod held thawed', () => Promise.resolve(isFrozen(pod) ? undefined : true));
    // Thawed: whether or not the agent has written its Thawed condition yet, it is off the count.
    await until('frozen pods back to 0', async () => ((await frozenPods()) === 0 ? true : undefined));
  }, 120_000);

  it('a pod annotated migrate-on-drain moves by itself when its node is cordoned', async () => {
    const [n1, n2] = t.cp.nodes.map((n) => n.name);
    await barePod(t, 'drained', n1!, `exec 3<${join(t.tmp, 'data.txt')}; exec sleep 1000`, {
      [MIGRATE_ON_DRAIN]: 'true',
    });
    const table = fdTable(await sleepOf(t, 'drained'));
    await kubectl(t, '', 'cordon', n1!);
    const m = await until('a drain migration', async () =>
      (await t.migrations.listAll()).items.find((x) => x.spec.podName === 'drained'),
    );
    const done = await finished(t, m.metadata.name ?? '');
    expect(done.status?.phase).toBe('Succeeded');
    expect(done.status?.targetNode).toBe(n2);
    expectMigratedTable(fdTable(await sleepOf(t, done.status?.targetPod ?? '')), table);
    await kubectl(t, '', 'uncordon', n1!);
  }, 120_000);
});
