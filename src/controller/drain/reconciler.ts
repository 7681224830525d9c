/**
 * Automatic migration on drain: when a node is cordoned or gets a NoExecute
 * taint, create a Migration for each of its running pods annotated
 * fdckpt.io/migrate-on-drain: "true" — no more than `maxConcurrent` unfinished
 * Migrations at once across the cluster, the rest as earlier ones finish.
 * A failed one is tried again with a new Migration after a growing wait, a
 * bounded number of times, unless its reason says a retry cannot help
 * (retry.ts). Keyed by node name; level-based: it recounts from the API
 * every time, so a restarted controller goes on where the last one stopped.
 */
import type { CoreV1Api, V1Node, V1Pod } from '@kubernetes/client-node';
import type { Migration } from '../../api/index.js';
import { API_VERSION, MIGRATE_ON_DRAIN, MIGRATION, MIGRATION_LABEL } from '../../api/index.js';
import type { DrainRetryOptions } from './retry.js';
import { DRAIN_ATTEMPT_LABEL, DRAIN_GAVE_UP_ANNOTATION, attemptOf, retryVerdict } from './retry.js';
import type { EventRecorder } from '../../kube/events.js';
import type { ResourceClient } from '../../kube/client.js';
import type { Reconciler, Result } from '../../kube/reconciler.js';
import { isNotFound } from '../../kube/errors.js';

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
  /** How soon to look again while pods wait for a free slot or a Migration runs. Default 2 s. */
  pollMs?: number;
  /** Retries of failed drain Migrations (defaults in retry.ts). */
  retry?: DrainRetryOptions;
  now?: () => Date;
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

/**
 * The Migration's name for a pod's attempt: stable for one pod UID and
 * attempt, so a retried reconcile does not create two. Attempt 1 has no
 * suffix. At most 63 characters: the name is also a label value.
 */
export function drainMigrationName(pod: V1Pod, attempt = 1): string {
  const uid = (pod.metadata?.uid ?? '').replace(/-/g, '').slice(0, 8);
  const podPart = (pod.metadata?.name ?? '').slice(0, 40).replace(/[.-]+$/, '');
  return `drain-${podPart}-${uid}${attempt > 1 ? `-${attempt}` : ''}`;
}

/** What the watcher knows about one pod, from the Migrations that exist. */
type PodState =
  | { kind: 'busy' } // a Migration runs, or one succeeded, or the watcher gave up
  | { kind: 'new' }
  | { kind: 'retry'; attempt: number; inMs: number; last: Migration }
  | { kind: 'giveUp'; why: string; last: Migration };

export class DrainReconciler implements Reconciler {
  readonly kind = 'NodeDrain';
  private readonly now: () => Date;

  constructor(private readonly deps: DrainReconcilerDeps) {
    this.now = deps.now ?? ((): Date => new Date());
  }

  /**
   * One node at a time: the concurrency limit is counted from the API, and two
   * workers counting at once for two nodes would both see the same free slot.
   */
  private serial: Promise<unknown> = Promise.resolve();

  reconcile(key: string): Promise<Result> {
    const run = this.serial.then(() => this.reconcileNode(key));
    this.serial = run.catch(() => undefined);
    return run;
  }

  private async reconcileNode(key: string): Promise<Result> {
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
    const poll = this.deps.pollMs ?? 2_000;
    let free = (this.deps.maxConcurrent ?? 2) - all.filter((m) => !finished(m)).length;
    let next: number | undefined;
    const lookAgainIn = (ms: number): void => {
      next = Math.min(next ?? ms, ms);
    };
    for (const pod of pods) {
      const state = this.stateOf(pod, all);
      if (state.kind === 'busy') {
        // Running Migrations of this node's pods: look again for their outcome.
        if (this.attemptsOf(pod, all).some((m) => !finished(m))) lookAgainIn(poll);
        continue;
      }
      if (state.kind === 'giveUp') {
        await this.giveUp(pod, node, state.last, state.why);
        continue;
      }
      if (state.kind === 'retry' && state.inMs > 0) {
        lookAgainIn(state.inMs);
        continue;
      }
      if (free <= 0) {
        lookAgainIn(poll);
        continue;
      }
      await this.create(pod, node, why, state.kind === 'retry' ? state : undefined);
      lookAgainIn(poll);
      free--;
    }
    return next === undefined ? {} : { requeueAfterMs: next };
  }

  /** The drain Migrations of this pod (this UID), whatever their phase. */
  private attemptsOf(pod: V1Pod, all: readonly Migration[]): Migration[] {
    const ns = pod.metadata?.namespace ?? '';
    const uid = pod.metadata?.uid ?? '';
    return all.filter(
      (m) => m.metadata.namespace === ns && m.metadata.annotations?.[DRAIN_POD_UID_ANNOTATION] === uid,
    );
  }

  private stateOf(pod: V1Pod, all: readonly Migration[]): PodState {
    const ns = pod.metadata?.namespace ?? '';
    // Someone else's unfinished Migration of this pod: leave it alone.
    if (all.some((m) => !finished(m) && m.metadata.namespace === ns && m.spec.podName === pod.metadata?.name))
      return { kind: 'busy' };
    const attempts = this.attemptsOf(pod, all);
    if (attempts.length === 0) return { kind: 'new' };
    if (attempts.some((m) => m.status?.phase !== 'Failed')) return { kind: 'busy' };
    const last = attempts.reduce((a, b) => (attemptOf(b) > attemptOf(a) ? b : a));
    if (last.metadata.annotations?.[DRAIN_GAVE_UP_ANNOTATION]) return { kind: 'busy' };
    const verdict = retryVerdict(last, this.now().getTime(), this.deps.retry);
    return verdict.action === 'giveUp'
      ? { kind: 'giveUp', why: verdict.why, last }
      : { kind: 'retry', attempt: verdict.attempt, inMs: verdict.inMs, last };
  }

  /** Mark the last attempt (so that it is said once) and tell the pod and the node. */
  private async giveUp(pod: V1Pod, node: V1Node, last: Migration, why: string): Promise<void> {
    await this.deps.migrations.patchMetadata(last, { annotations: { [DRAIN_GAVE_UP_ANNOTATION]: why } });
    const message = `not migrating pod ${pod.metadata?.name ?? ''} off ${node.metadata?.name ?? ''} any more: ${why}; see migration ${last.metadata.name ?? ''}`;
    this.deps.events.record(podRef(pod), 'Warning', 'DrainMigrationGaveUp', message);
    this.deps.events.record(nodeRef(node), 'Warning', 'DrainMigrationGaveUp', message);
  }

  private async create(
    pod: V1Pod,
    node: V1Node,
    why: string,
    retry?: { attempt: number; last: Migration },
  ): Promise<void> {
    const ns = pod.metadata?.namespace ?? '';
    const nodeName = node.metadata?.name ?? '';
    const attempt = retry?.attempt ?? 1;
    const name = drainMigrationName(pod, attempt);
    let created: Migration;
    try {
      created = (await this.deps.migrations.api.createNamespacedCustomObject({
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
            labels: {
              [DRAIN_NODE_LABEL]: nodeName,
              [MIGRATION_LABEL]: name,
              [DRAIN_ATTEMPT_LABEL]: String(attempt),
            },
            annotations: { [DRAIN_POD_UID_ANNOTATION]: pod.metadata?.uid ?? '' },
          },
          spec: { podName: pod.metadata?.name ?? '' },
        },
      })) as Migration;
    } catch (err) {
      // Created by an earlier attempt that failed before it could say so.
      if ((err as { code?: number }).code !== 409) throw err;
      return;
    }
    const podName = pod.metadata?.name ?? '';
    if (!retry) {
      this.deps.events.record(
        created,
        'Normal',
        'DrainMigration',
        `node ${nodeName} is ${why}: moving pod ${podName}`,
      );
      return;
    }
    const failure = retry.last.status?.rollbackReason ?? retry.last.status?.phase ?? '';
    const message = `node ${nodeName} is ${why}: attempt ${attempt} to move pod ${podName} (${name}); ${retry.last.metadata.name ?? ''} failed: ${failure}`;
    this.deps.events.record(created, 'Normal', 'DrainMigrationRetry', message);
    this.deps.events.record(podRef(pod), 'Normal', 'DrainMigrationRetry', message);
    this.deps.events.record(nodeRef(node), 'Normal', 'DrainMigrationRetry', message);
  }
}

/** Event targets for core objects (client-node's list items carry neither kind nor apiVersion). */
function podRef(pod: V1Pod): { apiVersion: string; kind: string; metadata: Migration['metadata'] } {
  const m = pod.metadata;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: m?.name, namespace: m?.namespace, uid: m?.uid, resourceVersion: m?.resourceVersion },
  };
}

function nodeRef(node: V1Node): { apiVersion: string; kind: string; metadata: Migration['metadata'] } {
  const m = node.metadata;
  return { apiVersion: 'v1', kind: 'Node', metadata: { name: m?.name, uid: m?.uid } };
}
