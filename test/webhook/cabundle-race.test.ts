/**
 * Every controller replica patches the pod webhook's caBundle when it starts (deploy/
 * runs two). Started together on a real node, the second replica's replace met the
 * first one's write with 409 Conflict and the replica crashed at start-up. Against a
 * real API server: concurrent patches all succeed, and the configuration ends with one
 * of the bundles they wrote.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import { makeCa } from '../../src/tls/ca.js';
import { patchCaBundle } from '../../src/controller/webhook/certstore.js';
import { startHarness, type Harness } from '../controller/support.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
}, 120_000);
afterAll(async () => h?.close());

describe('patchCaBundle', () => {
  it('survives replicas patching at the same time (409 Conflict is retried on the fresh version)', async () => {
    const admission = h.kc.makeApiClient(AdmissionregistrationV1Api);
    await admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { name: 'race' },
        webhooks: [
          {
            name: 'pods.fdckpt.io',
            admissionReviewVersions: ['v1'],
            sideEffects: 'None',
            failurePolicy: 'Ignore',
            clientConfig: { url: 'https://127.0.0.1:1/mutate' },
          },
        ],
      },
    });
    const cas = [1, 2, 3, 4].map((i) => makeCa({ cn: `replica-${i}` }, 1).cert);
    await Promise.all(cas.map((ca) => patchCaBundle(admission, 'race', ca)));
    const got = await admission.readMutatingWebhookConfiguration({ name: 'race' });
    const bundle = Buffer.from(got.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString();
    expect(cas).toContain(bundle);
  });
});
