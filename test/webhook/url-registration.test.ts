/**
 * The pod webhook registered by URL, as the local operator runs it: the
 * controller writes the MutatingWebhookConfiguration with clientConfig.url on
 * loopback and its CA, and kube-apiserver calls it when an owner's pod is
 * created (test/migration/deployment.test.ts uses this end to end).
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import type { Migration } from '../../src/api/index.js';
import { MIGRATION_LABEL } from '../../src/api/index.js';
import { localWebhookOptions } from '../../src/cli/local-operator.js';
import { OPERATOR_NAMESPACE } from '../../src/local/cluster/install.js';
import { silentLogger } from '../../src/kube/log.js';
import { startPodWebhook } from '../../src/controller/webhook/index.js';
import type { RunningWebhook } from '../../src/controller/webhook/server.js';
import type { MigrationHarness } from '../controller/migration-support.js';
import { capturedCheckpoint, startMigrationHarness } from '../controller/migration-support.js';

const HOLD = '/usr/local/lib/fdckpt/fdckpt-hold';
const RS_UID = '1b2c3d4e-0000-4000-8000-000000000002';

let h: MigrationHarness;
let admission: AdmissionregistrationV1Api;
let webhooks: RunningWebhook[] = [];
let migrations: Migration[] = [];

async function start(): Promise<RunningWebhook> {
  const w = await startPodWebhook(
    {
      core: h.core,
      admission,
      checkpoints: h.checkpoints,
      migrations: () => migrations,
      launcher: { image: 'fdckpt:test', hostPath: HOLD },
      log: silentLogger,
    },
    localWebhookOptions(h.cluster),
  );
  webhooks.push(w);
  return w;
}

beforeEach(async () => {
  h = await startMigrationHarness();
  admission = h.kc.makeApiClient(AdmissionregistrationV1Api);
  migrations = [];
  webhooks = [];
});
afterEach(async () => {
  for (const w of webhooks) await w.close();
  await h.close();
});

describe('the pod webhook registered by URL', () => {
  it('writes the configuration with its loopback URL and CA, and rewrites it on a new port', async () => {
    const first = await start();
    const config = await admission.readMutatingWebhookConfiguration({ name: 'fdckpt-pods' });
    const cc = config.webhooks?.[0]?.clientConfig;
    expect(cc?.url).toBe(`https://127.0.0.1:${first.port}/mutate-pods`);
    expect(cc?.service).toBeUndefined();
    const secret = await h.core.readNamespacedSecret({
      name: 'fdckpt-webhook-tls',
      namespace: OPERATOR_NAMESPACE,
    });
    expect(cc?.caBundle).toBe(secret.data?.['ca.crt']);
    expect(config.webhooks?.[0]).toMatchObject({ failurePolicy: 'Ignore', sideEffects: 'None' });

    await first.close();
    const second = await start();
    const again = await admission.readMutatingWebhookConfiguration({ name: 'fdckpt-pods' });
    expect(again.webhooks).toHaveLength(1);
    expect(again.webhooks?.[0]?.clientConfig.url).toBe(`https://127.0.0.1:${second.port}/mutate-pods`);
  });

  it('kube-apiserver calls it: the replacement of a Replacing Migration is pinned and labelled', async () => {
    await start();
    await capturedCheckpoint(h, 'm1', 'web-abc');
    migrations = [
      {
        apiVersion: 'fdckpt.io/v1alpha1',
        kind: 'Migration',
        metadata: { name: 'm1', namespace: 'default' },
        spec: { podName: 'web-abc' },
        status: { phase: 'Replacing', ownerUID: RS_UID, targetNode: 'n2', checkpointName: 'm1' },
      },
    ];
    const owned = (name: string) => ({
      metadata: {
        name,
        labels: { app: 'web' },
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9', uid: RS_UID, controller: true },
        ],
      },
      spec: { containers: [{ name: 'app', image: 'busybox', command: ['sleep', '1000'] }] },
    });
    const pod = await h.core.createNamespacedPod({ namespace: 'default', body: owned('web-def') });
    expect(pod.spec?.nodeName).toBe('n2');
    expect(pod.metadata?.labels?.[MIGRATION_LABEL]).toBe('m1');
    expect(pod.spec?.containers[0]?.command).toEqual([HOLD, '--timeout', '600', '--', 'sleep', '1000']);
    // Claimed: the owner's next pod passes unchanged.
    const next = await h.core.createNamespacedPod({ namespace: 'default', body: owned('web-ghi') });
    expect(next.spec?.nodeName).toBeUndefined();
  });
});
