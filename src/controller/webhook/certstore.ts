/**
 * The webhook's certificates live in a Secret (kubernetes.io/tls plus ca.crt),
 * made on first start and again when they no longer fit (expiring within 30
 * days, or other DNS names); the CA goes into the caBundle of the
 * MutatingWebhookConfiguration so that the API server trusts the webhook.
 * Replicas racing to create the Secret: the loser reads the winner's.
 */
import type {
  AdmissionregistrationV1Api,
  CoreV1Api,
  V1MutatingWebhook,
  V1Secret,
} from '@kubernetes/client-node';
import { isNotFound, httpStatus } from '../../kube/errors.js';
import type { WebhookCerts } from './certs.js';
import { certsUsable, makeWebhookCerts } from './certs.js';

export interface CertStoreOptions {
  namespace: string;
  secretName: string;
  /** The Service in front of the webhook: its cluster DNS names go in the certificate. */
  serviceName: string;
  /** Extra names or IPs (the local control plane reaches the webhook on 127.0.0.1). */
  extraHosts?: string[];
  /** MutatingWebhookConfiguration whose webhooks get the caBundle; absent: not patched. */
  configName?: string;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');

/** The DNS names a Service is reached by from the API server. */
export function serviceHosts(o: CertStoreOptions): string[] {
  const base = `${o.serviceName}.${o.namespace}`;
  return [`${base}.svc`, `${base}.svc.cluster.local`, ...(o.extraHosts ?? [])];
}

function fromSecret(s: V1Secret): WebhookCerts {
  return {
    ca: { cert: unb64(s.data?.['ca.crt']), key: '' },
    serving: { cert: unb64(s.data?.['tls.crt']), key: unb64(s.data?.['tls.key']) },
  };
}

/** Usable certificates from the Secret, made and stored when needed; the caBundle patched. */
export async function ensureWebhookCerts(
  core: CoreV1Api,
  admission: AdmissionregistrationV1Api | undefined,
  o: CertStoreOptions,
): Promise<WebhookCerts> {
  const hosts = serviceHosts(o);
  let existing: V1Secret | undefined;
  try {
    existing = await core.readNamespacedSecret({ name: o.secretName, namespace: o.namespace });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  let certs = existing ? fromSecret(existing) : undefined;
  if (!certs || !certsUsable(certs, hosts)) {
    const made = makeWebhookCerts(hosts);
    const body: V1Secret = {
      metadata: {
        name: o.secretName,
        namespace: o.namespace,
        resourceVersion: existing?.metadata?.resourceVersion,
      },
      type: 'kubernetes.io/tls',
      // The CA key is not kept: a renewal makes a new CA and patches the caBundle.
      data: {
        'tls.crt': b64(made.serving.cert),
        'tls.key': b64(made.serving.key),
        'ca.crt': b64(made.ca.cert),
      },
    };
    try {
      if (existing) await core.replaceNamespacedSecret({ name: o.secretName, namespace: o.namespace, body });
      else await core.createNamespacedSecret({ namespace: o.namespace, body });
      certs = made;
    } catch (err) {
      if (httpStatus(err) !== 409) throw err;
      certs = fromSecret(await core.readNamespacedSecret({ name: o.secretName, namespace: o.namespace }));
    }
  }
  if (admission && o.configName) await patchCaBundle(admission, o.configName, certs.ca.cert);
  return certs;
}

/** Set clientConfig.caBundle of every webhook in the configuration. */
export async function patchCaBundle(
  api: AdmissionregistrationV1Api,
  configName: string,
  caPem: string,
): Promise<void> {
  const bundle = b64(caPem);
  // Every controller replica patches the bundle at start-up: a 409 means another one
  // wrote first, so read again and write ours on top of its version (bounded).
  for (let attempt = 1; ; attempt++) {
    const config = await api.readMutatingWebhookConfiguration({ name: configName });
    const webhooks = (config.webhooks ?? []).map((w) => ({
      ...w,
      clientConfig: { ...w.clientConfig, caBundle: bundle },
    }));
    if (JSON.stringify(webhooks) === JSON.stringify(config.webhooks ?? [])) return;
    try {
      await api.replaceMutatingWebhookConfiguration({ name: configName, body: { ...config, webhooks } });
      return;
    } catch (err) {
      if (httpStatus(err) !== 409 || attempt >= 5) throw err;
    }
  }
}

/**
 * The pod webhook of deploy/webhook.yaml, reached by URL instead of through its Service:
 * for an API server that cannot route Services (the local control plane, whose
 * controller serves the webhook on loopback).
 */
export function webhookByUrl(url: string, caPem: string, operatorNamespace: string): V1MutatingWebhook {
  return {
    name: 'pods.fdckpt.io',
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: 'Ignore',
    timeoutSeconds: 5,
    reinvocationPolicy: 'Never',
    clientConfig: { url, caBundle: b64(caPem) },
    rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
    namespaceSelector: {
      matchExpressions: [
        {
          key: 'kubernetes.io/metadata.name',
          operator: 'NotIn',
          values: [...new Set([operatorNamespace, 'fdckpt-system', 'kube-system'])],
        },
      ],
    },
  };
}

/** Creates or replaces the MutatingWebhookConfiguration `configName` with the webhook at `url`. */
export async function registerWebhookByUrl(
  api: AdmissionregistrationV1Api,
  configName: string,
  webhook: V1MutatingWebhook,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      const cur = await api.readMutatingWebhookConfiguration({ name: configName });
      if (JSON.stringify(cur.webhooks) === JSON.stringify([webhook])) return;
      await api.replaceMutatingWebhookConfiguration({
        name: configName,
        body: { ...cur, webhooks: [webhook] },
      });
      return;
    } catch (err) {
      if (isNotFound(err)) {
        try {
          await api.createMutatingWebhookConfiguration({
            body: { metadata: { name: configName }, webhooks: [webhook] },
          });
          return;
        } catch (e) {
          if (httpStatus(e) !== 409 || attempt >= 3) throw e;
          continue;
        }
      }
      // Another writer between our read and replace: read again.
      if (httpStatus(err) !== 409 || attempt >= 3) throw err;
    }
  }
}
