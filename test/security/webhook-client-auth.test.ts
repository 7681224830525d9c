/**
 * Issue 12, item 24: the pod webhook serves only the API server. The local
 * control plane gives kube-apiserver an AdmissionConfiguration whose kubeconfig
 * holds a client certificate (CN kube-apiserver-webhook-client) from the cluster
 * CA, and the webhook requires it: a pod created through the API server is
 * still pinned and labelled, while a review POSTed straight to the port without
 * that certificate (none, another CA's, another subject's) is refused before it
 * is read, is logged, and takes no claim — within the 2 s claim grace, when a
 * forged claim would otherwise have held the Migration.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import type { V1Pod } from '@kubernetes/client-node';
import type { Migration } from '../../src/api/index.js';
import { MIGRATION_LABEL } from '../../src/api/index.js';
import { localWebhookOptions } from '../../src/cli/local-operator.js';
import type { Logger } from '../../src/kube/log.js';
import { startPodWebhook } from '../../src/controller/webhook/index.js';
import { MUTATE_PODS_PATH } from '../../src/controller/webhook/server.js';
import type { RunningWebhook } from '../../src/controller/webhook/server.js';
import { OPERATOR_NAMESPACE } from '../../src/local/cluster/install.js';
import { WEBHOOK_CLIENT_CN } from '../../src/local/cluster/pki.js';
import { issue, makeCa } from '../../src/tls/ca.js';
import type { PemCert } from '../../src/tls/x509.js';
import type { MigrationHarness } from '../controller/migration-support.js';
import { capturedCheckpoint, startMigrationHarness } from '../controller/migration-support.js';
import { podCreateReview } from '../support/admission.js';

const HOLD = '/usr/local/lib/fdckpt/fdckpt-hold';
const RS_UID = '1b2c3d4e-0000-4000-8000-000000000003';

let h: MigrationHarness;
let hook: RunningWebhook;
let servingCa: string;
let warnings: string[];

const migrations: Migration[] = [
  {
    apiVersion: 'fdckpt.io/v1alpha1',
    kind: 'Migration',
    metadata: { name: 'm1', namespace: 'default' },
    spec: { podName: 'web-abc' },
    status: { phase: 'Replacing', ownerUID: RS_UID, targetNode: 'n2', checkpointName: 'm1' },
  },
];

const logger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (m) => warnings.push(m),
  error: (m) => warnings.push(`error: ${m}`),
};

const owned = (name: string): V1Pod => ({
  metadata: {
    name,
    namespace: 'default',
    labels: { app: 'web' },
    ownerReferences: [
      { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9', uid: RS_UID, controller: true },
    ],
  },
  spec: { containers: [{ name: 'app', image: 'busybox', command: ['sleep', '1000'] }] },
});

const reviewOf = podCreateReview;

/** POST a review straight to the webhook, with `client`'s certificate if given. */
function post(body: string, client?: PemCert, port = hook.port): Promise<{ code: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: MUTATE_PODS_PATH,
        method: 'POST',
        ca: servingCa,
        ...(client ? { cert: client.cert, key: client.key } : {}),
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ code: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

beforeEach(async () => {
  warnings = [];
  h = await startMigrationHarness();
  hook = await startPodWebhook(
    {
      core: h.core,
      admission: h.kc.makeApiClient(AdmissionregistrationV1Api),
      checkpoints: h.checkpoints,
      migrations: () => migrations,
      launcher: { image: 'fdckpt:test', hostPath: HOLD },
      log: logger,
      // The default grace: a forged review that got through would hold the Migration.
    },
    localWebhookOptions(h.cluster),
  );
  const secret = await h.core.readNamespacedSecret({
    name: 'fdckpt-webhook-tls',
    namespace: OPERATOR_NAMESPACE,
  });
  servingCa = Buffer.from(secret.data?.['ca.crt'] ?? '', 'base64').toString('utf8');
  await capturedCheckpoint(h, 'm1', 'web-abc');
});
afterEach(async () => {
  await hook.close();
  await h.close();
});

describe('the pod webhook requires the API server’s client certificate', () => {
  it('refuses reviews without it, claims nothing, and still mutates pods the API server admits', async () => {
    const otherCa = makeCa('not-the-cluster-ca', 1);
    const strangers: [string, PemCert | undefined, number, string][] = [
      ['no certificate', undefined, 401, 'no client certificate'],
      [
        'the right CN from another CA',
        issue(otherCa, { subject: WEBHOOK_CLIENT_CN, days: 1, client: true }),
        401,
        `CN=${WEBHOOK_CLIENT_CN} refused`,
      ],
      [
        "a node's certificate from the cluster CA",
        h.cluster.pki.client('forger', { cn: 'system:node:n1', o: ['system:nodes'] }),
        403,
        'CN=system:node:n1 is not one of',
      ],
    ];
    for (const [what, cert, code, why] of strangers) {
      const got = await post(reviewOf(owned(`forged-${code}`), `f-${what}`), cert);
      expect({ what, code: got.code }).toEqual({ what, code });
      expect(got.text).toContain(why);
      // Neither the patch nor the captured argv reaches a stranger.
      expect(got.text).not.toContain('patch');
      expect(got.text).not.toContain('sleep');
    }
    expect(warnings).toHaveLength(strangers.length);
    for (const [i, [, , , why]] of strangers.entries()) {
      expect(warnings[i]).toMatch(/^webhook: refused 127\.0\.0\.1: /);
      expect(warnings[i]).toContain(why);
    }

    // Within the grace a forged claim would have held the Migration; none was taken.
    const pod = await h.core.createNamespacedPod({ namespace: 'default', body: owned('web-def') });
    expect(pod.spec?.nodeName).toBe('n2');
    expect(pod.metadata?.labels?.[MIGRATION_LABEL]).toBe('m1');
    expect(pod.spec?.containers[0]?.command).toEqual([HOLD, '--timeout', '600', '--', 'sleep', '1000']);
    // The API server's own calls were never refused.
    expect(warnings).toHaveLength(strangers.length);
  });

  it("serves a review signed by the API server's webhook client certificate", async () => {
    // The same subject from the same CA, as an operator holding it would: proof the check is the certificate.
    const client = h.cluster.pki.client('webhook-client-copy', WEBHOOK_CLIENT_CN);
    const got = await post(reviewOf(owned('web-xyz'), 'a1'), client);
    expect(got.code).toBe(200);
    expect((JSON.parse(got.text) as { response: { patch?: string } }).response.patch).toBeDefined();
    expect(warnings).toEqual([]);
  });

  it('`fdckpt controller --webhook-client-ca --webhook-client-names` serves only that certificate', async () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const a = probe.address();
        probe.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
      });
    });
    // The configuration the webhook above registered is the one this controller patches.
    const child = spawn(
      process.execPath,
      [
        join(root, 'bin', 'fdckpt.js'),
        'controller',
        ...['--kubeconfig', h.cluster.adminKubeconfig, '--port', '0', '--no-leader-elect'],
        ...['--launcher-host-path', HOLD, '--webhook-port', String(port)],
        ...[
          '--webhook-client-ca',
          h.cluster.pki.caFile,
          '--webhook-client-names',
          `${WEBHOOK_CLIENT_CN},other`,
        ],
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    try {
      await new Promise<void>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (stderr.includes('serving health and metrics')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`fdckpt controller exited (${code}): ${stderr}`)));
      });
      const review = reviewOf(owned('web-cli'), 'c1');
      expect((await post(review, undefined, port)).code).toBe(401);
      const node = h.cluster.pki.client('forger-cli', { cn: 'system:node:n1', o: ['system:nodes'] });
      expect((await post(review, node, port)).code).toBe(403);
      const apiServer = h.cluster.pki.client('webhook-client-cli', WEBHOOK_CLIENT_CN);
      expect((await post(review, apiServer, port)).code).toBe(200);
      expect(stderr).toContain('webhook: refused 127.0.0.1: no client certificate');
      expect(stderr).toContain(`CN=system:node:n1 is not one of ${WEBHOOK_CLIENT_CN}, other`);
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);
});
