/**
 * The pod webhook as the controller runs it: certificates from the Secret (or
 * made), the HTTPS server, and the mutation that binds a replacement pod to
 * the Migration waiting for it. A Migration is claimed by the first pod that
 * matches, so that two replacements from one owner never both go to it.
 */
import type { AdmissionregistrationV1Api, CoreV1Api, V1Pod } from '@kubernetes/client-node';
import type { Checkpoint, Migration } from '../../api/index.js';
import { MIGRATION_LABEL } from '../../api/index.js';
import type { ResourceClient } from '../../kube/client.js';
import type { LauncherOptions } from '../restore-pod.js';
import type { Logger } from '../../kube/log.js';
import type { CertStoreOptions } from './certstore.js';
import { ensureWebhookCerts, registerWebhookByUrl, webhookByUrl } from './certstore.js';
import type { JsonPatchOp } from './mutate.js';
import { migrationFor, replacementPatch } from './mutate.js';
import type { ClientAuth, RunningWebhook } from './server.js';
import { MUTATE_PODS_PATH, startWebhookServer } from './server.js';

export interface PodWebhookOptions extends CertStoreOptions {
  port: number;
  host?: string;
  /**
   * Register the webhook by URL: write the configuration `configName` with
   * clientConfig.url = https://<urlHost>:<port>/mutate-pods and the caBundle (urlHost is
   * added to the certificate's names). For an API server that cannot reach Services:
   * the local control plane. Without it the configuration is deploy/webhook.yaml's (a
   * Service) and only its caBundle is patched.
   */
  urlHost?: string;
  /**
   * Serve only callers with a client certificate from this CA (the API server, given
   * one by its AdmissionConfiguration); absent, anyone who reaches the port.
   */
  clientAuth?: ClientAuth;
}

export interface PodWebhookDeps {
  core: CoreV1Api;
  admission?: AdmissionregistrationV1Api;
  checkpoints: ResourceClient<Checkpoint>;
  /** Current Migrations (the controller's informer cache). */
  migrations: () => readonly Migration[];
  launcher: LauncherOptions;
  log: Logger;
  /** Tests: CLAIM_GRACE_MS otherwise. */
  claimGraceMs?: number;
}

/**
 * How long a claim stands on its word alone: the API server stores a pod a
 * moment after admitting it. Past that, a claim stands only if a pod labelled
 * for the Migration exists.
 */
export const CLAIM_GRACE_MS = 2_000;

/** The mutation alone (tests drive it without TLS). */
export function podMutator(
  deps: Pick<PodWebhookDeps, 'core' | 'checkpoints' | 'migrations' | 'launcher'> & { claimGraceMs?: number },
): (pod: V1Pod, namespace: string) => Promise<JsonPatchOp[] | undefined> {
  const grace = deps.claimGraceMs ?? CLAIM_GRACE_MS;
  /** Migration key → when a review claimed it. */
  const claimed = new Map<string, number>();
  // Without clientAuth anyone who can reach the port can POST a review, and even with it
  // the API server may yet refuse the pod: a claim is only a promise until the API shows a pod.
  const stands = async (namespace: string, name: string): Promise<boolean> => {
    const at = claimed.get(`${namespace}/${name}`);
    if (at === undefined) return false;
    if (Date.now() - at < grace) return true;
    const pods = await deps.core.listNamespacedPod({
      namespace,
      labelSelector: `${MIGRATION_LABEL}=${name}`,
    });
    return pods.items.some((p) => !p.metadata?.deletionTimestamp);
  };
  return async (pod, namespace) => {
    // The namespace of the review and of the object must agree, as the API server's do.
    if (pod.metadata?.namespace !== undefined && pod.metadata.namespace !== namespace) return undefined;
    const candidates = deps.migrations().filter((m) => m.metadata.namespace === namespace);
    const open: Migration[] = [];
    for (const m of candidates) if (!(await stands(namespace, m.metadata.name ?? ''))) open.push(m);
    const mig = migrationFor(pod, namespace, open);
    if (!mig) return undefined;
    const key = `${namespace}/${mig.metadata.name ?? ''}`;
    claimed.set(key, Date.now());
    // Forget the claim later: a replacement the API server then refused must not block the Migration.
    setTimeout(() => claimed.delete(key), 30_000).unref();
    const ckpt = await deps.checkpoints.get(namespace, mig.status?.checkpointName ?? '');
    return replacementPatch(pod, mig, ckpt, deps.launcher);
  };
}

export async function startPodWebhook(deps: PodWebhookDeps, o: PodWebhookOptions): Promise<RunningWebhook> {
  const byUrl = o.urlHost;
  // By URL, the configuration is written only once the port is known (below), not patched.
  const certs = byUrl
    ? await ensureWebhookCerts(deps.core, undefined, { ...o, extraHosts: [...(o.extraHosts ?? []), byUrl] })
    : await ensureWebhookCerts(deps.core, deps.admission, o);
  const server = await startWebhookServer({
    port: o.port,
    host: o.host,
    serving: certs.serving,
    mutate: podMutator(deps),
    ...(o.clientAuth ? { clientAuth: o.clientAuth } : {}),
    onError: (m) => deps.log.error(m),
    onRefused: (m) => deps.log.warn(m),
  });
  if (byUrl) {
    if (!deps.admission || !o.configName) {
      await server.close();
      throw new Error('webhook urlHost needs the admissionregistration client and configName');
    }
    const url = `https://${byUrl.includes(':') ? `[${byUrl}]` : byUrl}:${server.port}${MUTATE_PODS_PATH}`;
    try {
      await registerWebhookByUrl(deps.admission, o.configName, webhookByUrl(url, certs.ca.cert, o.namespace));
    } catch (err) {
      await server.close();
      throw err;
    }
  }
  return server;
}
