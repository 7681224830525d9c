/**
 * The garbage collector's second half. The API double deletes an owner's dependents
 * when the owner goes (background propagation; `propagationPolicy: Orphan` strips
 * their owner references instead, src/local/apiserver/objects.ts). That misses a
 * dependent created after its owner was deleted: a ReplicaSet controller that read
 * its ReplicaSet just before the delete and creates a pod just after. This sweeps
 * those: a ReplicaSet or pod whose owner references all name apps/v1 objects that
 * no longer exist (no object of that name, or one with another uid) is deleted.
 * Dependents with owners of other kinds are left alone.
 */
import {
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1OwnerReference,
  type V1Pod,
  type V1ReplicaSet,
} from '@kubernetes/client-node';
import { keyOf, listWatch, splitKey, statusOf, SyncLoop, type Watched } from './loop.js';

/** Starts the sweep; stop() ends its watches and waits for deletions under way. */
export async function startGarbageCollector(
  kc: KubeConfig,
  log?: (line: string) => void,
): Promise<{ stop(): Promise<void> }> {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);

  /** Whether the owner is gone: undefined when it is not a kind this sweep knows. */
  const ownerGone = async (namespace: string, ref: V1OwnerReference): Promise<boolean | undefined> => {
    if (ref.apiVersion !== 'apps/v1') return undefined;
    const read =
      ref.kind === 'ReplicaSet'
        ? () => apps.readNamespacedReplicaSet({ name: ref.name, namespace })
        : ref.kind === 'Deployment'
          ? () => apps.readNamespacedDeployment({ name: ref.name, namespace })
          : undefined;
    if (!read) return undefined;
    try {
      return (await read()).metadata?.uid !== ref.uid;
    } catch (e) {
      if (statusOf(e) === 404) return true;
      throw e;
    }
  };

  /** Keys are `pods|ns/name` or `replicasets|ns/name`. */
  const sync = async (key: string): Promise<void> => {
    const [kind, rest] = key.split('|') as [string, string];
    const { namespace, name } = splitKey(rest);
    let obj: V1Pod | V1ReplicaSet;
    try {
      obj =
        kind === 'pods'
          ? await core.readNamespacedPod({ name, namespace })
          : await apps.readNamespacedReplicaSet({ name, namespace });
    } catch (e) {
      if (statusOf(e) === 404) return;
      throw e;
    }
    const refs = obj.metadata?.ownerReferences ?? [];
    if (!refs.length || obj.metadata?.deletionTimestamp) return;
    for (const ref of refs) if ((await ownerGone(namespace, ref)) !== true) return;
    log?.(`garbage collector: deleting ${kind} ${namespace}/${name}: its owners are gone`);
    const body = { propagationPolicy: 'Background', preconditions: { uid: obj.metadata?.uid ?? '' } };
    try {
      if (kind === 'pods') await core.deleteNamespacedPod({ name, namespace, body });
      else await apps.deleteNamespacedReplicaSet({ name, namespace, body });
    } catch (e) {
      if (statusOf(e) !== 404 && statusOf(e) !== 409) throw e;
    }
  };

  const loop = new SyncLoop('garbage collector', sync, log);
  const owned = (o: { metadata?: { ownerReferences?: V1OwnerReference[] } }): boolean =>
    (o.metadata?.ownerReferences ?? []).some((r) => r.apiVersion === 'apps/v1');
  const watches: Watched<V1Pod | V1ReplicaSet>[] = [
    await listWatch<V1Pod>(
      kc,
      '/api/v1/pods',
      () => core.listPodForAllNamespaces(),
      (p) => owned(p) && loop.add(`pods|${keyOf(p)}`),
      log,
    ),
    await listWatch<V1ReplicaSet>(
      kc,
      '/apis/apps/v1/replicasets',
      () => apps.listReplicaSetForAllNamespaces(),
      (rs) => owned(rs) && loop.add(`replicasets|${keyOf(rs)}`),
      log,
    ),
  ];
  const resync = setInterval(() => {
    for (const [i, w] of watches.entries())
      for (const o of w.list()) if (owned(o)) loop.add(`${i === 0 ? 'pods' : 'replicasets'}|${keyOf(o)}`);
  }, 10_000);
  return {
    async stop() {
      clearInterval(resync);
      for (const w of watches) await w.stop();
      await loop.stop();
    },
  };
}
