/**
 * Admission webhooks on the API double, configured through the real client-node: a
 * mutating webhook's JSONPatch lands in the stored object, a validating webhook's denial
 * is the client's error, and failurePolicy decides what an unreachable webhook means.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AdmissionregistrationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startApiServer, type ApiServer } from '../../src/local/apiserver/server.js';
import { kubeConfigFor, statusOf } from './support.js';

interface Review {
  request: {
    uid: string;
    operation: string;
    name: string;
    object?: { metadata?: { labels?: Record<string, string> } };
    oldObject?: unknown;
  };
}

let api: ApiServer;
let hook: Server;
let hookUrl: string;
const seen: { path: string; operation: string; name: string; hasOld: boolean }[] = [];

beforeAll(async () => {
  hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Review;
      const r = review.request;
      seen.push({
        path: req.url ?? '',
        operation: r.operation,
        name: r.name,
        hasOld: r.oldObject !== null && r.oldObject !== undefined,
      });
      let response: Record<string, unknown> = { uid: r.uid, allowed: true };
      if (req.url === '/mutate' && r.object) {
        const ops = [
          {
            op: 'add',
            path: r.object.metadata?.labels ? '/metadata/labels/mutated' : '/metadata/labels',
            value: r.object.metadata?.labels ? 'yes' : { mutated: 'yes' },
          },
        ];
        response = {
          ...response,
          patchType: 'JSONPatch',
          patch: Buffer.from(JSON.stringify(ops)).toString('base64'),
        };
      }
      if (req.url === '/validate' && r.object?.metadata?.labels?.['deny'] === 'true') {
        response = {
          uid: r.uid,
          allowed: false,
          status: { code: 403, reason: 'Forbidden', message: 'deny=true is not allowed' },
        };
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;
  api = await startApiServer();
  const adm = kubeConfigFor(api.url).makeApiClient(AdmissionregistrationV1Api);
  const rules = [
    { operations: ['CREATE', 'UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps'] },
  ];
  await adm.createMutatingWebhookConfiguration({
    body: {
      metadata: { name: 'mutate' },
      webhooks: [
        {
          name: 'mutate.test.fdckpt.io',
          clientConfig: { url: `${hookUrl}/mutate` },
          rules,
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          objectSelector: { matchExpressions: [{ key: 'skip', operator: 'DoesNotExist' }] },
        },
        {
          name: 'dead-ignored.test.fdckpt.io',
          clientConfig: { url: 'http://127.0.0.1:1/x' },
          rules,
          failurePolicy: 'Ignore',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
        },
        {
          name: 'dead-fail.test.fdckpt.io',
          clientConfig: { url: 'http://127.0.0.1:1/x' },
          rules,
          failurePolicy: 'Fail',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          namespaceSelector: { matchLabels: { strict: 'yes' } },
        },
      ],
    },
  });
  await adm.createValidatingWebhookConfiguration({
    body: {
      metadata: { name: 'validate' },
      webhooks: [
        {
          name: 'validate.test.fdckpt.io',
          clientConfig: { url: `${hookUrl}/validate` },
          rules,
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
        },
      ],
    },
  });
});

afterAll(async () => {
  await api.close();
  await new Promise((r) => hook.close(r));
});

describe('admission webhooks', () => {
  it('applies a mutating webhook patch on create and update, with the old object on update', async () => {
    const core = kubeConfigFor(api.url).makeApiClient(CoreV1Api);
    const cm = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'm1', labels: { a: 'b' } } },
    });
    expect(cm.metadata?.labels).toEqual({ a: 'b', mutated: 'yes' });
    const updated = await core.replaceNamespacedConfigMap({
      namespace: 'default',
      name: 'm1',
      body: { ...cm, metadata: { ...cm.metadata, labels: { a: 'c' } } },
    });
    expect(updated.metadata?.labels).toEqual({ a: 'c', mutated: 'yes' });
    expect(seen.filter((s) => s.name === 'm1').map((s) => `${s.path} ${s.operation} ${s.hasOld}`)).toEqual([
      '/mutate CREATE false',
      '/validate CREATE false',
      '/mutate UPDATE true',
      '/validate UPDATE true',
    ]);
    const skipped = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'm2', labels: { skip: '1' } } },
    });
    expect(skipped.metadata?.labels).toEqual({ skip: '1' });
  });

  it('turns a validating webhook denial into the client error, and stores nothing', async () => {
    const core = kubeConfigFor(api.url).makeApiClient(CoreV1Api);
    const err: unknown = await core
      .createNamespacedConfigMap({
        namespace: 'default',
        body: { metadata: { name: 'd1', labels: { deny: 'true' } } },
      })
      .catch((e: unknown) => e);
    expect(statusOf(err)).toMatchObject({
      code: 403,
      reason: 'Forbidden',
      message: 'admission webhook "validate.test.fdckpt.io" denied the request: deny=true is not allowed',
    });
    await expect(core.readNamespacedConfigMap({ namespace: 'default', name: 'd1' })).rejects.toMatchObject({
      code: 404,
    });
  });

  it('fails the request when a failurePolicy Fail webhook cannot be called', async () => {
    const core = kubeConfigFor(api.url).makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'strict', labels: { strict: 'yes' } } } });
    const err: unknown = await core
      .createNamespacedConfigMap({ namespace: 'strict', body: { metadata: { name: 'x' } } })
      .catch((e: unknown) => e);
    expect(statusOf(err)).toMatchObject({ code: 500, reason: 'InternalError' });
    expect(JSON.stringify(statusOf(err))).toContain('failed calling webhook \\"dead-fail.test.fdckpt.io\\"');
  });
});
