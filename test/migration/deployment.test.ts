/**
 * A Deployment's pod migrated on the local control plane with two nodes: the
 * Deployment and ReplicaSet controllers run the pod, the controller serves the
 * pod webhook by URL (the API double calls it), and the Migration is applied
 * with kubectl. The owner's replacement lands on node 2 with the saved fd table
 * and stays the ReplicaSet's; a failure after the source is gone leaves the
 * Deployment with a fresh pod (without the table), as docs/migration.md says.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { AppsV1Api } from '@kubernetes/client-node';
import { MIGRATION_LABEL } from '../../src/api/index.js';
import { loadKubeConfig } from '../../src/kube/client.js';
import type { TwoNodes } from '../support/twonodes.js';
import {
  CLEAN_FDS,
  fdTable,
  finished,
  kubectl,
  podGone,
  sleepOf,
  startTwoNodes,
  until,
} from '../support/twonodes.js';
import { expectMigratedTable } from './tables.js';

let t: TwoNodes;
let apps: AppsV1Api;

beforeAll(async () => {
  t = await startTwoNodes();
  apps = loadKubeConfig(t.cp.kubeconfigPath).makeApiClient(AppsV1Api);
}, 60_000);

afterAll(async () => {
  await t?.stop();
});

/** A one-replica Deployment whose pod runs `script` on `node` (JSON: kubectl apply reads it too). */
function deployment(name: string, node: string, script: string): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          // Pinned by name: the webhook replaces it with the target node (a nodeSelector
          // naming node 1 would contradict the replacement's node).
          nodeName: node,
          terminationGracePeriodSeconds: 1,
          containers: [{ name: 'app', image: 'host', command: ['python3', '-c', CLEAN_FDS, script] }],
        },
      },
    },
  });
}

/** The Deployment's pods that are not terminating. */
async function livePods(app: string): Promise<V1Pod[]> {
  const pods = await t.c.core.listNamespacedPod({ namespace: 'default', labelSelector: `app=${app}` });
  return pods.items.filter((p) => !p.metadata?.deletionTimestamp);
}

async function theRunningPod(app: string, except?: string): Promise<V1Pod> {
  return until(`a running pod of ${app}`, async () => {
    const pods = await livePods(app);
    const pod = pods[0];
    return pods.length === 1 && pod?.status?.phase === 'Running' && pod.metadata?.name !== except
      ? pod
      : undefined;
  });
}

const controllerUid = (p: V1Pod): string | undefined =>
  p.metadata?.ownerReferences?.find((r) => r.controller)?.uid;

async function applyMigration(name: string, pod: string, node: string, extra = ''): Promise<void> {
  await kubectl(
    t,
    `apiVersion: fdckpt.io/v1alpha1\nkind: Migration\nmetadata: {name: ${name}, namespace: default}\nspec: {podName: ${pod}, targetNode: ${node}${extra}}\n`,
    'apply',
    '-f',
    '-',
  );
}

describe('migration of a Deployment pod on two local nodes', () => {
  it('the ReplicaSet recreates the pod on node 2, where it gets the saved table', async () => {
    const [n1, n2] = t.cp.nodes.map((n) => n.name);
    const data = join(t.tmp, 'data.txt');
    writeFileSync(data, 'hello\n');
    await kubectl(
      t,
      deployment('web', n1!, `exec 3<${data} 4>>${join(t.tmp, 'out.log')}; exec sleep 1000`),
      'apply',
      '-f',
      '-',
    );
    const source = await theRunningPod('web');
    const sourceName = source.metadata?.name ?? '';
    expect(source.spec?.nodeName).toBe(n1);
    const table = fdTable(await sleepOf(t, sourceName));
    expect(Object.values(table)).toContain(data);

    await applyMigration('web', sourceName, n2!);
    const m = await finished(t, 'web');
    expect(m.status?.conditions?.find((x) => x.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Migrated',
    });
    expect(m.status).toMatchObject({
      ownerManaged: true,
      ownerKind: 'ReplicaSet',
      sourceNode: n1,
      targetNode: n2,
    });

    const target = await t.c.core.readNamespacedPod({
      name: m.status?.targetPod ?? '',
      namespace: 'default',
    });
    expect(target.metadata?.name).not.toBe(sourceName);
    expect(target.spec?.nodeName).toBe(n2);
    expect(target.metadata?.labels?.[MIGRATION_LABEL]).toBe('web');
    expect(controllerUid(target)).toBe(controllerUid(source));
    expectMigratedTable(fdTable(await sleepOf(t, target.metadata?.name ?? '')), table);

    // Exactly one pod of the Deployment in the end: the replacement, and it counts as available.
    await until('source pod gone', async () => ((await podGone(t, sourceName)) ? true : undefined));
    const pods = (await t.c.core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=web' })).items;
    expect(pods.map((p) => p.metadata?.name)).toEqual([target.metadata?.name]);
    await until('the Deployment available again', async () => {
      const d = await apps.readNamespacedDeployment({ name: 'web', namespace: 'default' });
      return d.status?.availableReplicas === 1 && d.status.replicas === 1 ? true : undefined;
    });
  }, 120_000);

  // Last in the file: node 2 goes away.
  it('the target node gone: Failed, and the Deployment runs a fresh pod on node 1 without the table', async () => {
    const [n1, n2] = t.cp.nodes.map((n) => n.name);
    // Every start opens a new file: a fresh start and a restored table differ in fd 3.
    await kubectl(
      t,
      deployment('rb', n1!, `exec 3<>$(mktemp -p ${t.tmp}); exec sleep 1000`),
      'apply',
      '-f',
      '-',
    );
    const source = await theRunningPod('rb');
    const sourceName = source.metadata?.name ?? '';
    const saved = fdTable(await sleepOf(t, sourceName));
    expect(saved['3']).toMatch(new RegExp(`^${t.tmp}/tmp\\.`));
    // The replacement is bound to node 2 and never starts there; then node 2 goes.
    await t.cp.kubelets[1]!.stop();
    await applyMigration('rb', sourceName, n2!, ', timeoutSeconds: 60');
    await until('the Restoring phase', async () =>
      (await t.migrations.get('default', 'rb')).status?.phase === 'Restoring' ? true : undefined,
    );
    await t.c.core.deleteNode({ name: n2! });
    const m = await finished(t, 'rb');
    expect(m.status?.phase).toBe('Failed');
    expect(m.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('TargetNodeGone');
    expect(await podGone(t, m.status?.targetPod ?? '')).toBe(true);

    // The owner starts the workload afresh: one pod, on node 1, same ReplicaSet, no saved table.
    const fresh = await theRunningPod('rb', m.status?.targetPod);
    expect(fresh.metadata?.name).not.toBe(sourceName);
    expect(fresh.spec?.nodeName).toBe(n1);
    expect(fresh.metadata?.labels?.[MIGRATION_LABEL]).toBeUndefined();
    expect(controllerUid(fresh)).toBe(controllerUid(source));
    const table = fdTable(await sleepOf(t, fresh.metadata?.name ?? ''));
    expect(table['3']).toMatch(new RegExp(`^${t.tmp}/tmp\\.`));
    expect(table['3']).not.toBe(saved['3']);
  }, 120_000);
});
