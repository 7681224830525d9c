/**
 * core/v1 Events written by the local node components (scheduler, kubelets), so that
 * `kubectl describe pod` and `kubectl get events` look as they do on a cluster.
 * Recording is best effort: a failure is logged, never thrown.
 */
import { randomBytes } from 'node:crypto';
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';

/** Records one event about a pod. */
export async function recordPodEvent(
  core: CoreV1Api,
  pod: V1Pod,
  component: string,
  host: string | undefined,
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
  log?: (line: string) => void,
): Promise<void> {
  const m = pod.metadata;
  if (!m?.name || !m.namespace) return;
  const now = new Date();
  try {
    await core.createNamespacedEvent({
      namespace: m.namespace,
      body: {
        metadata: { name: `${m.name}.${randomBytes(8).toString('hex')}`, namespace: m.namespace },
        involvedObject: {
          apiVersion: 'v1',
          kind: 'Pod',
          name: m.name,
          namespace: m.namespace,
          ...(m.uid ? { uid: m.uid } : {}),
          ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
        },
        reason,
        message,
        type,
        source: { component, ...(host ? { host } : {}) },
        reportingComponent: component,
        reportingInstance: host ?? component,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
  } catch (e) {
    log?.(`event ${reason} for ${m.namespace}/${m.name}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
