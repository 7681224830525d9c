/**
 * Owner-managed pods: the Migration deletes the frozen source, the owner's
 * replacement goes through the real HTTPS admission webhook (certificates
 * made and stored in a Secret by the project, caBundle patched), is pinned to
 * the target node with the launcher injected, and gets the Restore. The test
 * plays the ReplicaSet and the API server's call to the webhook, so that it can
 * drive each step and check the claim rules; test/migration/deployment.test.ts
 * does the same end to end with kube-controller-manager's ReplicaSet controller and
 * kube-apiserver calling the webhook.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { request } from 'node:https';
import { AdmissionregistrationV1Api, Watch } from '@kubernetes/client-node';
import type { V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import { MIGRATION_LABEL } from '../../src/api/index.js';
import { CheckpointReconciler } from '../../src/controller/checkpoint.js';
import { MemoryEventRecorder } from '../../src/kube/events.js';
import { MigrationReconciler } from '../../src/controller/migration/reconciler.js';
import { RestoreReconciler } from '../../src/controller/restore.js';
import { silentLogger } from '../../src/kube/log.js';
import { ensureWebhookCerts } from '../../src/controller/webhook/certstore.js';
import { startPodWebhook } from '../../src/controller/webhook/index.js';
import type { JsonPatchOp } from '../../src/controller/webhook/mutate.js';
import type { RunningWebhook } from '../../src/controller/webhook/server.js';
import { MUTATE_PODS_PATH } from '../../src/controller/webhook/server.js';
import type { MigrationHarness } from '../controller/migration-support.js';
import {
  agentCaptured,
  agentReplayed,
  createMigration,
  kubeletConfirmsDeletion,
  podAlive,
  setPodPhase,
  startMigrationHarness,
} from '../controller/migration-support.js';
import { reason } from '../controller/support.js';

const HOLD = '/usr/local/lib/fdckpt/fdckpt-hold';
const RS: V1OwnerReference = {
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  name: 'web-7d9',
  uid: '1b2c3d4e-0000-4000-8000-000000000001',
  controller: true,
};
const WEBHOOK = {
  namespace: 'default',
  secretName: 'fdckpt-webhook-tls',
  serviceName: 'fdckpt-webhook',
  extraHosts: ['127.0.0.1'],
  configName: 'fdckpt-pods',
};

let h: MigrationHarness;
let mig: MigrationReconciler;
let ckpts: CheckpointReconciler;
let restores: RestoreReconciler;
let webhook: RunningWebhook;
let caPem = '';
/** The webhook reads Migrations from the controller's cache; here, a list the test refreshes. */
let current: Awaited<ReturnType<MigrationHarness['migrations']['listAll']>>['items'] = [];

beforeEach(async () => {
  current = [];
  h = await startMigrationHarness();
  const events = new MemoryEventRecorder();
  mig = new MigrationReconciler({ ...h, events, pollMs: 10 });
  ckpts = new CheckpointReconciler({ checkpoints: h.checkpoints, core: h.core, events });
  const launcher = { image: 'fdckpt:test', hostPath: HOLD };
  restores = new RestoreReconciler({
    restores: h.restores,
    checkpoints: h.checkpoints,
    core: h.core,
    events,
    launcher,
    imageTransfer: true,
  });
  const admission = h.kc.makeApiClient(AdmissionregistrationV1Api);
  await admission.createMutatingWebhookConfiguration({
    body: {
      metadata: { name: WEBHOOK.configName },
      webhooks: [
        {
          name: 'pods.fdckpt.io',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Ignore',
          clientConfig: {
            service: { name: WEBHOOK.serviceName, namespace: WEBHOOK.namespace, path: MUTATE_PODS_PATH },
          },
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        },
      ],
    },
  });
  webhook = await startPodWebhook(
    {
      core: h.core,
      admission,
      checkpoints: h.checkpoints,
      migrations: () => current,
      launcher,
      log: silentLogger,
    },
    { ...WEBHOOK, port: 0, host: '127.0.0.1' },
  );
  const config = await admission.readMutatingWebhookConfiguration({ name: WEBHOOK.configName });
  caPem = Buffer.from(config.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString();
  await createPod(ownedPod('web-abc', 'n1'));
  await setPodPhase(h, 'web-abc', 'Running');
});
afterEach(async () => {
  await webhook.close();
  await h.close();
});

async function refresh(): Promise<void> {
  current = (await h.migrations.listAll()).items;
}

function ownedPod(name: string, node?: string): V1Pod {
  return {
    metadata: { name, namespace: 'default', labels: { app: 'web' }, ownerReferences: [RS] },
    spec: {
      ...(node ? { nodeName: node } : {}),
      containers: [{ name: 'app', image: 'busybox', command: ['sleep', '1000'] }],
    },
  };
}

async function createPod(pod: V1Pod): Promise<V1Pod> {
  return h.core.createNamespacedPod({ namespace: 'default', body: pod });
}

/** What the API server does: POST the AdmissionReview over TLS, trusting only the caBundle. */
function review(pod: V1Pod): Promise<{ response: { allowed: boolean; patch?: string; patchType?: string } }> {
  const body = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u1',
      operation: 'CREATE',
      namespace: 'default',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      object: pod,
    },
  });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: webhook.port,
        path: MUTATE_PODS_PATH,
        method: 'POST',
        ca: caPem,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve(JSON.parse(text) as { response: { allowed: boolean; patch?: string } }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The two kinds of operation the webhook emits, applied as the API server would. */
function applyPatch(pod: V1Pod, ops: JsonPatchOp[]): V1Pod {
  const out = structuredClone(pod) as unknown as Record<string, Record<string, unknown>>;
  for (const op of ops) {
    const [, top, key] = op.path.split('/');
    if (key === undefined) out[top!] = op.value as Record<string, unknown>;
    else out[top!]![key] = op.value;
  }
  return out;
}

/** The ReplicaSet makes a replacement; it passes through the webhook. */
async function ownerRecreates(name: string): Promise<V1Pod> {
  const pod = ownedPod(name);
  const r = await review(pod);
  expect(r.response.allowed).toBe(true);
  const ops = r.response.patch
    ? (JSON.parse(Buffer.from(r.response.patch, 'base64').toString()) as JsonPatchOp[])
    : [];
  return createPod(applyPatch(pod, ops));
}

async function throughCapture(spec: { listenFds?: boolean } = {}): Promise<void> {
  await createMigration(h, 'm1', { podName: 'web-abc', targetNode: 'n2', ...spec });
  await mig.reconcile('default/m1');
  await ckpts.reconcile('default/m1');
  await agentCaptured(h, 'm1');
  await ckpts.reconcile('default/m1');
  await mig.reconcile('default/m1'); // → Replacing, stored
  await mig.reconcile('default/m1'); // the source deleted
  await refresh();
}

describe('owner-managed pods through the webhook', () => {
  it('the certificates are stored once and the caBundle is the stored CA', async () => {
    const s = await h.core.readNamespacedSecret({ name: WEBHOOK.secretName, namespace: 'default' });
    expect(Buffer.from(s.data?.['ca.crt'] ?? '', 'base64').toString()).toBe(caPem);
    const again = await ensureWebhookCerts(h.core, undefined, WEBHOOK);
    expect(again.ca.cert).toBe(caPem);
  });

  it('the source is deleted only once the stored Migration says Replacing', async () => {
    // The owner recreates the pod as soon as it is deleted, and the webhook knows the
    // replacement only from a Replacing Migration: that status must be stored first.
    // One etcd orders every write: a resourceVersion is its revision, so the Migration's
    // Replacing must carry a smaller one than the source pod's deletion.
    let replacingAt: number | undefined;
    let deletedAt: number | undefined;
    const watch = new Watch(h.kc);
    type Seen = {
      metadata?: { name?: string; resourceVersion?: string; deletionTimestamp?: string };
      status?: { phase?: string };
    };
    const rv = (o: Seen): number => Number(o.metadata?.resourceVersion);
    const migrations = await watch.watch(
      '/apis/fdckpt.io/v1alpha1/namespaces/default/migrations',
      {},
      (_type, o: Seen) => {
        if (replacingAt === undefined && o.status?.phase === 'Replacing') replacingAt = rv(o);
      },
      () => undefined,
    );
    const pods = await watch.watch(
      '/api/v1/namespaces/default/pods',
      {},
      (type, o: Seen) => {
        if (o.metadata?.name !== 'web-abc' || deletedAt !== undefined) return;
        if (type === 'DELETED' || o.metadata.deletionTimestamp) deletedAt = rv(o);
      },
      () => undefined,
    );
    try {
      await throughCapture();
      for (let i = 0; i < 100 && (replacingAt === undefined || deletedAt === undefined); i++)
        await new Promise((r) => setTimeout(r, 50));
    } finally {
      migrations.abort();
      pods.abort();
    }
    expect(replacingAt).toBeDefined();
    expect(deletedAt).toBeDefined();
    expect(replacingAt!).toBeLessThan(deletedAt!);
  });

  it('a Deployment pod: deleted after capture, replacement pinned and restored', async () => {
    await throughCapture();
    let m = await h.migrations.get('default', 'm1');
    expect(m.status).toMatchObject({
      phase: 'Replacing',
      ownerManaged: true,
      ownerUID: RS.uid,
      ownerKind: 'ReplicaSet',
    });
    expect(await podAlive(h, 'web-abc')).toBe(false);
    await kubeletConfirmsDeletion(h, 'web-abc');

    // Not the replacement: another owner's pod passes untouched.
    const other = await review({
      ...ownedPod('x'),
      metadata: { name: 'x', ownerReferences: [{ ...RS, uid: '9' }] },
    });
    expect(other.response.patch).toBeUndefined();

    const replacement = await ownerRecreates('web-def');
    expect(replacement.spec?.nodeName).toBe('n2');
    expect(replacement.metadata?.labels?.[MIGRATION_LABEL]).toBe('m1');
    expect(replacement.spec?.containers[0]?.command).toEqual([
      HOLD,
      '--timeout',
      '600',
      '--',
      'sleep',
      '1000',
    ]);
    // Claimed: a second replacement from the same owner is not bound to m1.
    expect((await review(ownedPod('web-ghi'))).response.patch).toBeUndefined();

    await setPodPhase(h, 'web-def', 'Running');
    await mig.reconcile('default/m1');
    m = await h.migrations.get('default', 'm1');
    expect(m.status).toMatchObject({ phase: 'Restoring', targetPod: 'web-def' });
    expect((await h.restores.get('default', 'm1')).spec.target).toEqual({ podName: 'web-def' });
    await restores.reconcile('default/m1');
    await agentReplayed(h, 'm1');
    await restores.reconcile('default/m1');
    await mig.reconcile('default/m1');
    m = await h.migrations.get('default', 'm1');
    expect(m.status?.phase).toBe('Succeeded');
    expect(reason(m, 'Ready')).toBe('True/Migrated');
    // Still the ReplicaSet's pod.
    const target = await h.core.readNamespacedPod({ name: 'web-def', namespace: 'default' });
    expect(target.metadata?.ownerReferences).toEqual([RS]);
  });

  it('listenFds: the replacement runs the launcher with --listen-fds and its Restore hands off', async () => {
    await throughCapture({ listenFds: true });
    await kubeletConfirmsDeletion(h, 'web-abc');
    const replacement = await ownerRecreates('web-def');
    expect(replacement.spec?.containers[0]?.command).toEqual([
      HOLD,
      '--timeout',
      '600',
      '--listen-fds',
      '--',
      'sleep',
      '1000',
    ]);
    await setPodPhase(h, 'web-def', 'Running');
    await mig.reconcile('default/m1');
    expect((await h.restores.get('default', 'm1')).spec).toMatchObject({
      target: { podName: 'web-def' },
      listenFds: true,
    });
  });

  it('a failed replay deletes the replacement so that the owner starts the workload afresh', async () => {
    await throughCapture();
    await kubeletConfirmsDeletion(h, 'web-abc');
    await ownerRecreates('web-def');
    await setPodPhase(h, 'web-def', 'Running');
    await mig.reconcile('default/m1');
    await restores.reconcile('default/m1');
    await agentReplayed(h, 'm1', 'ReplayFailed', 'fd 3: /data: ENOENT');
    await restores.reconcile('default/m1');
    await mig.reconcile('default/m1');
    await mig.reconcile('default/m1');
    const m = await h.migrations.get('default', 'm1');
    expect(m.status?.phase).toBe('Failed');
    expect(reason(m, 'Ready')).toBe('False/ReplayFailed');
    expect(await podAlive(h, 'web-def')).toBe(false);
    await refresh();
    // The owner's next pod is an ordinary one.
    expect((await review(ownedPod('web-jkl'))).response.patch).toBeUndefined();
  });
});
