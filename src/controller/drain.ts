/**
 * Automatic migration on drain: when a node is cordoned or gets a NoExecute
 * taint, create a Migration for each of its running pods annotated
 * fdckpt.io/migrate-on-drain: "true" — no more than `maxConcurrent` unfinished
 * Migrations at once across the cluster, the rest as earlier ones finish.
 * Keyed by node name; level-based: it recounts from the API every time.
 */
import type { CoreV1Api, V1Node, V1Pod } from '@kubernetes/client-node';
import type { Migration } from '../api/index.js';
import { API_VERSION, MIGRATE_ON_DRAIN, MIGRATION, MIGRATION_LABEL } from '../api/index.js';
import type { EventRecorder } from './events.js';
import type { ResourceClient } from './kube.js';
import type { Reconciler, Result } from './runtime/controller.js';
import { isNotFound } from './runtime/errors.js';

/** Label on a Migration the drain watcher created: the drained node. */
export const DRAIN_NODE_LABEL = 'fdckpt.io/drain-node';
/** Annotation on such a Migration: the UID of the pod it moves (a pod replaced later gets its own). */
export const DRAIN_POD_UID_ANNOTATION = 'fdckpt.io/pod-uid';

export interface DrainReconcilerDeps {
  core: CoreV1Api;
  migrations: ResourceClient<Migration>;
  events: EventRecorder;
  /** Most unfinished Migrations at once, cluster-wide. Default 2. */
  maxConcurrent?: number;
  /** How soon to look again while pods wait for a free slot. Default 2 s. */
  pollMs?: number;
}

/** Why a node is being drained, or undefined when it is not. */
export function drainReason(node: V1Node): string | undefined {
  if (node.spec?.unschedulable) return 'cordoned';
  const taint = (node.spec?.taints ?? []).find((t) => t.effect === 'NoExecute');
  return taint ? `tainted ${taint.key}:NoExecute` : undefined;
}

function finished(m: Migration): boolean {
  return m.status?.phase === 'Succeeded' || m.status?.phase === 'Failed';
}

/** The Migration's name for a pod: stable for one pod UID, so a retried reconcile does not create two. */
export function drainMigrationName(pod: V1Pod): string {
  const uid = (pod.metadata?.uid ?? '').replace(/-/g, '').slice(0, 8);
  return `drain-${(pod.metadata?.name ?? '').slice(0, 230)}-${uid}`;
}

export class DrainReconciler implements Reconciler {
  readonly kind = 'NodeDrain';

  constructor(private readonly deps: DrainReconcilerDeps) {}

  async reconcile(key: string): Promise<Result> {
    let node: V1Node;
    try {
      node = await this.deps.core.readNode({ name: key });
    } catch (err) {
      if (isNotFound(err)) return {};
      throw err;
    }
    const why = drainReason(node);
    if (!why) return {};
    const pods = (
      await this.deps.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${key}` })
    ).items.filter(
      (p) =>
        p.metadata?.annotations?.[MIGRATE_ON_DRAIN] === 'true' &&
        p.status?.phase === 'Running' &&
        !p.metadata.deletionTimestamp,
    );
    if (pods.length === 0) return {};
    const all = (await this.deps.migrations.listAll()).items;
    // A pod already has a Migration (running, done, or failed: a failed one is not retried blindly).
    const covered = new Set(
      all.map((m) => m.metadata.annotations?.[DRAIN_POD_UID_ANNOTATION]).filter((u): u is string => !!u),
    );
    for (const m of all) if (!finished(m)) covered.add(`${m.metadata.namespace ?? ''}/${m.spec.podName}`);
    let free = (this.deps.maxConcurrent ?? 2) - all.filter((m) => !finished(m)).length;
    let waiting = 0;
    for (const pod of pods) {
      const ns = pod.metadata?.namespace ?? '';
      if (covered.has(pod.metadata?.uid ?? '') || covered.has(`${ns}/${pod.metadata?.name ?? ''}`)) continue;
      if (free <= 0) {
        waiting++;
        continue;
      }
      await this.create(pod, key, why);
      free--;
    }
    return waiting > 0 ? { requeueAfterMs: this.deps.pollMs ?? 2_000 } : {};
  }

  private async create(pod: V1Pod, node: string, why: string): Promise<void> {
    const ns = pod.metadata?.namespace ?? '';
    const name = drainMigrationName(pod);
    try {
      const created = (await this.deps.migrations.api.createNamespacedCustomObject({
        group: 'fdckpt.io',
        version: 'v1alpha1',
        namespace: ns,
        plural: MIGRATION.plural,
        body: {
          apiVersion: API_VERSION,
          kind: MIGRATION.kind,
          metadata: {
            name,
            namespace: ns,
            labels: { [DRAIN_NODE_LABEL]: node, [MIGRATION_LABEL]: name },
            annotations: { [DRAIN_POD_UID_ANNOTATION]: pod.metadata?.uid ?? '' },
          },
          spec: { podName: pod.metadata?.name ?? '' },
        },
      })) as Migration;
      this.deps.events.record(
        created,
        'Normal',
        'DrainMigration',
        `node ${node} is ${why}: moving pod ${pod.metadata?.name ?? ''}`,
      );
    } catch (err) {
      // Created by an earlier attempt that failed before it could say so.
      if ((err as { code?: number }).code !== 409) throw err;
    }
  }
}
