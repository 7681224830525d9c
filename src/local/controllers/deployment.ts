/**
 * The Deployment controller of the local control plane, minimal: one ReplicaSet per
 * pod template, named `<deployment>-<pod-template-hash>` and labelled (template and
 * selector) with that hash, controlled by the Deployment. A template change makes a
 * new ReplicaSet; the old ones are scaled to 0 and the new one scaled up once they
 * report no replicas left — the Recreate strategy, whatever spec.strategy says (no
 * RollingUpdate surge). Status: replicas, updatedReplicas, readyReplicas,
 * availableReplicas, unavailableReplicas, observedGeneration, and the Available and
 * Progressing conditions, enough for `kubectl rollout status`.
 *
 * Not done: RollingUpdate, paused Deployments, rollbacks, revisionHistoryLimit
 * clean-up, progress deadlines, hash collisions (collisionCount), adopting ReplicaSets.
 */
import {
  AppsV1Api,
  type KubeConfig,
  type V1Deployment,
  type V1DeploymentCondition,
  type V1PodTemplateSpec,
  type V1ReplicaSet,
} from '@kubernetes/client-node';
import { selectorString } from '../apiserver/apps.js';
import { controllerOf, runOwnerController, splitKey, statusOf } from './loop.js';
import { mergePatch } from './patch.js';

export const POD_TEMPLATE_HASH = 'pod-template-hash';
const REVISION = 'deployment.kubernetes.io/revision';

/** JSON with sorted keys, so that equal templates hash equally whatever their key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * The pod-template-hash: FNV-1a (32 bits) of the template, its decimal digits spelt in
 * the alphabet Kubernetes uses for generated names (no vowels, so no words).
 */
export function podTemplateHash(tpl: V1PodTemplateSpec | undefined): string {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(canonical(tpl ?? {}))) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...String(h)].map((c) => alphabet[c.charCodeAt(0) % alphabet.length]).join('');
}

function condition(
  prev: V1DeploymentCondition[] | undefined,
  type: string,
  ok: boolean,
  reason: string,
  message: string,
): V1DeploymentCondition {
  const status = ok ? 'True' : 'False';
  const old = prev?.find((c) => c.type === type);
  const now = new Date();
  // The transition time moves only when the status does.
  const same = old?.status === status;
  return {
    type,
    status,
    reason,
    message,
    lastUpdateTime: same && old?.reason === reason ? (old?.lastUpdateTime ?? now) : now,
    lastTransitionTime: same ? (old?.lastTransitionTime ?? now) : now,
  };
}

const num = (n: number | undefined): number => n ?? 0;

/** Starts the controller; stop() ends its watches and waits for syncs under way. */
export async function startDeploymentController(
  kc: KubeConfig,
  log?: (line: string) => void,
): Promise<{ stop(): Promise<void> }> {
  const apps = kc.makeApiClient(AppsV1Api);

  const scale = (rs: V1ReplicaSet, replicas: number): Promise<V1ReplicaSet> =>
    apps.patchNamespacedReplicaSet(
      {
        name: rs.metadata?.name ?? '',
        namespace: rs.metadata?.namespace ?? '',
        body: { spec: { replicas } },
      },
      mergePatch,
    );

  const newReplicaSet = (d: V1Deployment, hash: string, replicas: number, revision: number): V1ReplicaSet => {
    const m = d.metadata!;
    const tpl = structuredClone(d.spec!.template);
    tpl.metadata = {
      ...tpl.metadata,
      labels: { ...(tpl.metadata?.labels ?? {}), [POD_TEMPLATE_HASH]: hash },
    };
    const sel = d.spec!.selector;
    return {
      metadata: {
        name: `${m.name ?? ''}-${hash}`,
        namespace: m.namespace,
        labels: tpl.metadata.labels,
        annotations: { [REVISION]: String(revision) },
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            name: m.name ?? '',
            uid: m.uid ?? '',
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: {
        replicas,
        selector: { ...sel, matchLabels: { ...(sel.matchLabels ?? {}), [POD_TEMPLATE_HASH]: hash } },
        template: tpl,
      },
    };
  };

  const sync = async (key: string): Promise<void> => {
    const { namespace, name } = splitKey(key);
    let d: V1Deployment;
    try {
      d = await apps.readNamespacedDeployment({ name, namespace });
    } catch (e) {
      if (statusOf(e) === 404) return;
      throw e;
    }
    const uid = d.metadata?.uid;
    if (!uid || d.metadata?.deletionTimestamp || !d.spec) return;
    const desired = d.spec.replicas ?? 1;
    const hash = podTemplateHash(d.spec.template);
    const owned = (
      await apps.listNamespacedReplicaSet({ namespace, labelSelector: selectorString(d.spec.selector) })
    ).items.filter((rs) => controllerOf(rs)?.uid === uid);
    let current = owned.find((rs) => rs.metadata?.labels?.[POD_TEMPLATE_HASH] === hash);
    const old = owned.filter((rs) => rs !== current);
    for (const rs of old) if (rs.spec?.replicas !== 0) await scale(rs, 0);
    // Recreate: the new template's pods start once the old ones are no longer counted.
    const oldLeft = old.reduce((n, rs) => n + num(rs.status?.replicas), 0);
    const target = oldLeft > 0 ? 0 : desired;
    if (!current) {
      const revision =
        1 + Math.max(0, ...owned.map((rs) => Number(rs.metadata?.annotations?.[REVISION] ?? 0) || 0));
      current = await apps.createNamespacedReplicaSet({
        namespace,
        body: newReplicaSet(d, hash, target, revision),
      });
    } else if (current.spec?.replicas !== target) current = await scale(current, target);

    const all = [current, ...old];
    const sum = (f: (rs: V1ReplicaSet) => number | undefined): number =>
      all.reduce((n, rs) => n + num(f(rs)), 0);
    const available = sum((rs) => rs.status?.availableReplicas);
    const updated = num(current.status?.replicas);
    const replicas = sum((rs) => rs.status?.replicas);
    const done = updated === desired && replicas === desired && available >= desired;
    const prev = d.status?.conditions;
    const status = {
      observedGeneration: d.metadata?.generation ?? 0,
      replicas,
      updatedReplicas: updated,
      readyReplicas: sum((rs) => rs.status?.readyReplicas),
      availableReplicas: available,
      unavailableReplicas: Math.max(0, desired - available),
      conditions: [
        available >= desired
          ? condition(
              prev,
              'Available',
              true,
              'MinimumReplicasAvailable',
              'Deployment has minimum availability.',
            )
          : condition(
              prev,
              'Available',
              false,
              'MinimumReplicasUnavailable',
              'Deployment does not have minimum availability.',
            ),
        done
          ? condition(
              prev,
              'Progressing',
              true,
              'NewReplicaSetAvailable',
              `ReplicaSet "${current.metadata?.name ?? ''}" has successfully progressed.`,
            )
          : condition(
              prev,
              'Progressing',
              true,
              'ReplicaSetUpdated',
              `ReplicaSet "${current.metadata?.name ?? ''}" is progressing.`,
            ),
      ],
    };
    const cur = d.status ?? {};
    const changed =
      Object.entries(status).some(
        ([k, v]) => k !== 'conditions' && (cur as Record<string, unknown>)[k] !== v,
      ) ||
      status.conditions.some((c) => {
        const o = cur.conditions?.find((x) => x.type === c.type);
        return o?.status !== c.status || o.reason !== c.reason || o.message !== c.message;
      });
    if (changed)
      await apps.patchNamespacedDeploymentStatus({ name, namespace, body: { status } }, mergePatch);
  };

  return await runOwnerController(
    kc,
    {
      name: 'deployment',
      owner: { path: '/apis/apps/v1/deployments', list: () => apps.listDeploymentForAllNamespaces() },
      owned: {
        path: '/apis/apps/v1/replicasets',
        list: () => apps.listReplicaSetForAllNamespaces(),
        ownerKind: 'Deployment',
      },
    },
    sync,
    log,
  );
}
