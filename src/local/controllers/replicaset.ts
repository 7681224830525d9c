/**
 * The ReplicaSet controller of the local control plane: keeps spec.replicas pods of
 * spec.template, each controlled by its ReplicaSet (ownerReference controller and
 * blockOwnerDeletion, name `<replicaset>-<5 characters>` through generateName), and
 * reports status.replicas, readyReplicas, availableReplicas and observedGeneration.
 * A pod that is terminating or finished no longer counts, so that a deleted pod is
 * replaced at once, as the real controller does.
 *
 * Not done: adopting matching pods that have no owner, minReadySeconds (a Ready pod
 * is available at once), slow-start batches, events.
 */
import {
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1Pod,
  type V1ReplicaSet,
} from '@kubernetes/client-node';
import { selectorString } from '../apiserver/apps.js';
import { controllerOf, runOwnerController, splitKey, statusOf } from './loop.js';
import { mergePatch } from './patch.js';

/** A pod that the ReplicaSet counts: neither terminating nor finished. */
export function isActive(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return !pod.metadata?.deletionTimestamp && phase !== 'Succeeded' && phase !== 'Failed';
}

/** Whether the pod's Ready condition is True. */
export function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/**
 * The order in which surplus pods go, as the real controller ranks them: unscheduled
 * before scheduled, pending before running, not ready before ready, newer before older.
 */
function deletionRank(a: V1Pod, b: V1Pod): number {
  const by = (f: (p: V1Pod) => boolean): number => Number(f(b)) - Number(f(a));
  return (
    by((p) => !p.spec?.nodeName) ||
    by((p) => p.status?.phase === 'Pending') ||
    by((p) => !isReady(p)) ||
    String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? ''))
  );
}

/** Starts the controller; stop() ends its watches and waits for syncs under way. */
export async function startReplicaSetController(
  kc: KubeConfig,
  log?: (line: string) => void,
): Promise<{ stop(): Promise<void> }> {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);

  const sync = async (key: string): Promise<void> => {
    const { namespace, name } = splitKey(key);
    let rs: V1ReplicaSet;
    try {
      rs = await apps.readNamespacedReplicaSet({ name, namespace });
    } catch (e) {
      if (statusOf(e) === 404) return;
      throw e;
    }
    const uid = rs.metadata?.uid;
    if (!uid || rs.metadata?.deletionTimestamp) return;
    const owned = (
      await core.listNamespacedPod({ namespace, labelSelector: selectorString(rs.spec?.selector) })
    ).items.filter((p) => controllerOf(p)?.uid === uid);
    const active = owned.filter(isActive);
    const want = rs.spec?.replicas ?? 1;
    for (let i = active.length; i < want; i++) {
      const tpl = rs.spec?.template;
      await core.createNamespacedPod({
        namespace,
        body: {
          metadata: {
            generateName: `${name}-`,
            namespace,
            labels: { ...(tpl?.metadata?.labels ?? {}) },
            annotations: { ...(tpl?.metadata?.annotations ?? {}) },
            ownerReferences: [
              {
                apiVersion: 'apps/v1',
                kind: 'ReplicaSet',
                name,
                uid,
                controller: true,
                blockOwnerDeletion: true,
              },
            ],
          },
          spec: tpl?.spec ?? { containers: [] },
        },
      });
    }
    for (const pod of [...active].sort(deletionRank).slice(0, Math.max(0, active.length - want))) {
      await core
        .deleteNamespacedPod({
          name: pod.metadata?.name ?? '',
          namespace,
          body: { preconditions: { uid: pod.metadata?.uid ?? '' } },
        })
        .catch((e: unknown) => {
          if (statusOf(e) !== 404 && statusOf(e) !== 409) throw e;
        });
    }
    // What was observed before this sync's changes: their watch events bring the next sync.
    const ready = active.filter(isReady).length;
    const status = {
      replicas: active.length,
      fullyLabeledReplicas: active.length,
      readyReplicas: ready,
      availableReplicas: ready,
      observedGeneration: rs.metadata?.generation ?? 0,
    };
    const cur = rs.status ?? {};
    if (Object.entries(status).some(([k, v]) => (cur as Record<string, unknown>)[k] !== v)) {
      await apps.patchNamespacedReplicaSetStatus({ name, namespace, body: { status } }, mergePatch);
    }
  };

  return await runOwnerController(
    kc,
    {
      name: 'replicaset',
      owner: { path: '/apis/apps/v1/replicasets', list: () => apps.listReplicaSetForAllNamespaces() },
      owned: { path: '/api/v1/pods', list: () => core.listPodForAllNamespaces(), ownerKind: 'ReplicaSet' },
    },
    sync,
    log,
  );
}
