/**
 * Issue 12, items 11 and 24: the pod admission webhook is a port anyone on
 * the network can POST to. Its body is bounded (413 past 3 MiB, kube-apiserver's
 * own limit), a body that is not an AdmissionReview is a 400 that says why (a
 * `null` body was a 500 and a TypeError), and a review nobody but the poster
 * saw cannot take a Migration's replacement away from the real one.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { request } from 'node:https';
import type { V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import type { Migration } from '../../src/api/index.js';
import { MIGRATION_LABEL } from '../../src/api/index.js';
import { makeWebhookCerts } from '../../src/controller/webhook/certs.js';
import { podMutator } from '../../src/controller/webhook/index.js';
import { MAX_BODY_BYTES, MUTATE_PODS_PATH, startWebhookServer } from '../../src/controller/webhook/server.js';
import type { RunningWebhook } from '../../src/controller/webhook/server.js';
import type { Harness } from '../controller/support.js';
import { createCheckpoint, makePod, startHarness } from '../controller/support.js';
import { podCreateReview } from '../support/admission.js';

const certs = makeWebhookCerts(['127.0.0.1']);
const RS: V1OwnerReference = {
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  name: 'web-7d9',
  uid: '1b2c3d4e-0000-4000-8000-000000000001',
  controller: true,
};

interface Answer {
  code: number;
  body: { message?: string; response?: { allowed: boolean; patch?: string } };
}

/** POST `body` to the webhook over TLS, trusting its CA; chunked when `chunked`. */
function post(port: number, body: Buffer | string, chunked = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: MUTATE_PODS_PATH,
        method: 'POST',
        ca: certs.ca.cert,
        headers: {
          'content-type': 'application/json',
          ...(chunked ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ code: res.statusCode ?? 0, body: JSON.parse(text) as Answer['body'] }));
      },
    );
    // The server may answer before all of a big body is sent, and close.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    if (chunked) {
      // Well past the limit, in pieces, with no length announced.
      const piece = Buffer.alloc(256 * 1024, 0x20);
      for (let sent = 0; sent <= MAX_BODY_BYTES + piece.length; sent += piece.length) req.write(piece);
      req.end();
    } else req.end(body);
  });
}

const reviewOf = podCreateReview;

describe('the webhook reads only bounded, well-formed AdmissionReviews', () => {
  let hook: RunningWebhook;
  let errors: string[];
  beforeAll(async () => {
    errors = [];
    hook = await startWebhookServer({
      port: 0,
      host: '127.0.0.1',
      serving: certs.serving,
      mutate: () => Promise.resolve(undefined),
      onError: (m) => errors.push(m),
    });
  });
  afterAll(() => hook.close());

  it('answers 413 to a body over 3 MiB, announced or chunked, and still serves', async () => {
    const big = Buffer.alloc(MAX_BODY_BYTES + 1, 0x20);
    const announced = await post(hook.port, big);
    expect(announced.code).toBe(413);
    expect(announced.body.message).toContain(`at most ${MAX_BODY_BYTES}`);
    const chunked = await post(hook.port, '', true);
    expect(chunked.code).toBe(413);
    expect(chunked.body.message).toContain(`over ${MAX_BODY_BYTES} bytes`);
    const ok = await post(hook.port, reviewOf({ metadata: { name: 'p' }, spec: { containers: [] } }));
    expect(ok.code).toBe(200);
    expect(ok.body.response?.allowed).toBe(true);
  });

  it('answers 400 naming what is wrong for bodies that are not AdmissionReviews', async () => {
    const cases: [string, string][] = [
      ['null', 'not an AdmissionReview object'],
      ['[]', 'not an AdmissionReview object'],
      ['"x"', 'not an AdmissionReview object'],
      ['{"request": null}', 'request is missing'],
      ['{"request": {"uid": 7}}', 'request.uid is missing'],
      ['{"kind": "Pod", "request": {"uid": "u"}}', 'kind "Pod": not an AdmissionReview'],
      ['{"request": {"uid": "u", "object": "pod"}}', 'request.object must be an object'],
      [
        '{"request": {"uid": "u", "operation": "CREATE", "kind": {"kind": "Pod"}, "object": {"metadata": 5}}}',
        'request.object.metadata must be an object',
      ],
      ['{"request": {"uid": "u", "namespace": {}}}', 'request.namespace must be a string'],
      ['{not json', 'body is not JSON'],
    ];
    for (const [body, why] of cases) {
      const got = await post(hook.port, body);
      expect({ body, code: got.code }).toEqual({ body, code: 400 });
      expect(got.body.message).toContain(why);
    }
    expect(errors).toEqual([]); // none of them reached the handler's 500 path
  });
});

describe('a forged AdmissionReview cannot claim a Migration’s replacement', () => {
  let h: Harness;
  let hook: RunningWebhook;
  let mig: Migration;
  beforeEach(async () => {
    h = await startHarness();
    await makePod(h, 'src', { node: 'n1', phase: 'Running' });
    await createCheckpoint(h, 'm1', { podName: 'src' });
    mig = {
      metadata: { name: 'm1', namespace: 'default' },
      spec: { podName: 'src', targetNode: 'n2' },
      status: { phase: 'Replacing', ownerUID: RS.uid, targetNode: 'n2', checkpointName: 'm1' },
    };
    hook = await startWebhookServer({
      port: 0,
      host: '127.0.0.1',
      serving: certs.serving,
      // No grace: what the API shows decides at once (CLAIM_GRACE_MS covers the API's store delay).
      mutate: podMutator({
        core: h.core,
        checkpoints: h.checkpoints,
        migrations: () => [mig],
        launcher: { image: 'fdckpt:test', hostPath: '/hold' },
        claimGraceMs: 0,
      }),
    });
  });
  afterEach(async () => {
    await hook.close();
    await h.close();
  });

  const owned = (name: string): V1Pod => ({
    metadata: { name, namespace: 'default', ownerReferences: [RS] },
    spec: { containers: [{ name: 'app', image: 'busybox' }] },
  });

  it('the real replacement is still bound after a forged review, and a stored one keeps its claim', async () => {
    // An unauthenticated poster who read the Migration's status.ownerUID.
    const forged = await post(hook.port, reviewOf(owned('forged'), 'f1'));
    expect(forged.code).toBe(200);
    // The forged pod was never created: the owner's real replacement still gets the Migration.
    const real = await post(hook.port, reviewOf(owned('web-def'), 'r1'));
    expect(real.body.response?.patch).toBeDefined();
    // Once the API holds the labelled replacement, the claim stands.
    await h.core.createNamespacedPod({
      namespace: 'default',
      body: {
        ...owned('web-def'),
        metadata: { ...owned('web-def').metadata, labels: { [MIGRATION_LABEL]: 'm1' } },
      },
    });
    const second = await post(hook.port, reviewOf(owned('web-ghi'), 'r2'));
    expect(second.code).toBe(200);
    expect(second.body.response?.patch).toBeUndefined();
  });

  it('a review whose object is in another namespace than the review says is not bound', async () => {
    const pod = owned('x');
    pod.metadata = { ...pod.metadata, namespace: 'other' };
    const got = await post(hook.port, reviewOf(pod));
    expect(got.body.response?.patch).toBeUndefined();
  });
});
