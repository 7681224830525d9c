/**
 * The Restore reconciler (controller side). It waits for a Ready Checkpoint
 * with an image, finds or creates the target pod (a new pod is built from
 * the checkpointed one, on the image's node, launcher injected, owned by the
 * Restore), and once that pod runs assigns the replay to the node's agent.
 * The agent owns Replayed, fdsReplayed and failures; the controller turns
 * Replayed into Ready and a phase.
 */
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import type { Checkpoint, ConditionInput, Restore, RestoreStatus } from '../api/index.js';
import {
  CONDITIONS,
  NODE_LABEL,
  RESTORE,
  findCondition,
  isTrue,
  removeCondition,
  setCondition,
  validateRestoreSpec,
} from '../api/index.js';
import type { Reconciler, Result } from './runtime/controller.js';
import { TerminalError, isNotFound } from './runtime/errors.js';
import { splitKey } from './runtime/informer.js';
import type { EventRecorder } from './events.js';
import type { ResourceClient } from './kube.js';
import { clone, same } from './kube.js';
import type { ControllerMetrics } from './metrics.js';
import type { LauncherOptions } from './restore-pod.js';
import { RestorePodError, buildRestoredPod, restoredPodName } from './restore-pod.js';
import { announceTransitions, withFailedCondition } from './transitions.js';

export interface RestoreReconcilerDeps {
  restores: ResourceClient<Restore>;
  checkpoints: ResourceClient<Checkpoint>;
  core: CoreV1Api;
  events: EventRecorder;
  launcher: LauncherOptions;
  metrics?: ControllerMetrics;
  now?: () => Date;
  pollMs?: number;
  /**
   * Agents fetch images from each other (src/agent/transfer): a Restore may
   * target another node than the image's. Off, such a Restore fails ImageNotOnNode.
   */
  imageTransfer?: boolean;
  /**
   * A target pod that has not run this long after the Restore was created
   * fails the Restore (PodNotStarted) instead of keeping it Waiting. Default 300 s.
   */
  podStartTimeoutMs?: number;
}

type Step = { requeueAfterMs?: number; labelNode?: string };

export class RestoreReconciler implements Reconciler {
  readonly kind = RESTORE.kind;
  private readonly now: () => Date;

  constructor(private readonly deps: RestoreReconcilerDeps) {
    this.now = deps.now ?? ((): Date => new Date());
  }

  async reconcile(key: string): Promise<Result> {
    const { namespace, name } = splitKey(key);
    const found = await this.deps.restores.find(namespace, name);
    if (!found) return {}; // gone: nothing to reconcile
    let restore = found;
    // No finalizer: the restored pod is owned by the Restore and garbage-collected with it.
    if (restore.metadata.deletionTimestamp) return {};
    const status = clone(restore.status ?? {});
    status.observedGeneration = restore.metadata.generation;
    const errors = validateRestoreSpec(restore.spec);
    if (errors.length > 0) {
      this.set(status, restore, {
        type: CONDITIONS.InvalidSpec,
        status: 'True',
        reason: 'InvalidSpec',
        message: errors.join('; '),
      });
      this.fail(status, restore, 'InvalidSpec', 'the spec is invalid; see InvalidSpec');
      await this.save(restore, status);
      throw new TerminalError(`invalid spec: ${errors.join('; ')}`);
    }
    status.conditions = removeCondition(status.conditions, CONDITIONS.InvalidSpec);
    const step = isTrue(status.conditions, CONDITIONS.Scheduled)
      ? this.judge(restore, status)
      : status.phase === 'Failed'
        ? {}
        : await this.prepare(restore, status);
    if (step.labelNode) {
      restore = await this.deps.restores.patchMetadata(restore, { labels: { [NODE_LABEL]: step.labelNode } });
    }
    await this.save(restore, status);
    if (status.phase === 'Failed') await this.deleteCreatedPod(restore, status);
    return { requeueAfterMs: step.requeueAfterMs };
  }

  /**
   * A failed Restore's own pod is deleted: its launcher would wait (600 s by
   * default) for a replay that never comes, and a Running pod would say the
   * restore worked. A pod named by target.podName is the user's: left alone.
   */
  private async deleteCreatedPod(restore: Restore, status: RestoreStatus): Promise<void> {
    if (!restore.spec.target.newPod) return;
    const namespace = restore.metadata.namespace ?? '';
    const name = restoredPodName(restore);
    let pod: V1Pod;
    try {
      pod = await this.deps.core.readNamespacedPod({ name, namespace });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    const owner = pod.metadata?.ownerReferences?.find((o) => o.controller);
    if (owner?.uid !== restore.metadata.uid || pod.metadata?.deletionTimestamp) return;
    try {
      await this.deps.core.deleteNamespacedPod({
        name,
        namespace,
        // Only the pod that was read: a pod made again under the name is not ours to judge.
        body: { preconditions: { uid: pod.metadata?.uid } },
      });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    const why = findCondition(status.conditions, CONDITIONS.Ready)?.reason ?? 'Failed';
    this.deps.events.record(
      restore,
      'Normal',
      'PodDeleted',
      `deleted pod ${name}: the restore failed (${why})`,
    );
  }

  /** Before the agent is asked: a usable checkpoint, and a running target pod. */
  private async prepare(restore: Restore, status: RestoreStatus): Promise<Step> {
    const poll = this.deps.pollMs ?? 2_000;
    const ns = restore.metadata.namespace ?? '';
    let ckpt: Checkpoint;
    try {
      ckpt = await this.deps.checkpoints.get(ns, restore.spec.checkpointName);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return this.wait(
        status,
        restore,
        'CheckpointNotFound',
        `checkpoint ${restore.spec.checkpointName} does not exist`,
        poll * 5,
      );
    }
    if (ckpt.status?.phase === 'Failed') {
      return this.fail(
        status,
        restore,
        'CheckpointFailed',
        `checkpoint ${restore.spec.checkpointName} failed`,
      );
    }
    if (!isTrue(ckpt.status?.conditions, CONDITIONS.Ready)) {
      return this.wait(
        status,
        restore,
        'CheckpointNotReady',
        `checkpoint ${restore.spec.checkpointName} is not Ready yet`,
        poll,
      );
    }
    const image = ckpt.status?.image;
    if (!image)
      return this.fail(
        status,
        restore,
        'NoImage',
        `checkpoint ${restore.spec.checkpointName} has no image (a dry run?)`,
      );

    const target = restore.spec.target;
    let pod: V1Pod;
    if (target.podName) {
      try {
        pod = await this.deps.core.readNamespacedPod({ name: target.podName, namespace: ns });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        return this.wait(status, restore, 'PodNotFound', `pod ${target.podName} does not exist`, poll * 5);
      }
    } else {
      const node = target.newPod?.nodeName ?? image.node;
      if (node !== image.node && !this.deps.imageTransfer) {
        return this.fail(
          status,
          restore,
          'ImageNotOnNode',
          `the image is on ${image.node}; copying images between nodes is not supported yet`,
        );
      }
      // A node that does not exist never runs the pod: say so instead of waiting forever.
      try {
        await this.deps.core.readNode({ name: node });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        return this.fail(status, restore, 'NodeNotFound', `node ${node} does not exist`);
      }
      const created = await this.ensurePod(restore, ckpt, node, status);
      if (!('pod' in created)) return {};
      pod = created.pod;
    }
    const node = pod.spec?.nodeName;
    const phase = pod.status?.phase;
    if (phase === 'Failed' || phase === 'Succeeded') {
      // The launcher gave up waiting (or the program ended): nothing left to replay into.
      return this.fail(status, restore, 'PodFinished', `pod ${pod.metadata?.name ?? ''} is ${phase}`);
    }
    if (!node || phase !== 'Running') {
      const created = Date.parse(restore.metadata.creationTimestamp?.toString() ?? '');
      const limit = this.deps.podStartTimeoutMs ?? 300_000;
      const now = this.now().getTime();
      if (!Number.isNaN(created) && now - created > limit) {
        return this.fail(
          status,
          restore,
          'PodNotStarted',
          `pod ${pod.metadata?.name ?? ''} is ${phase ?? 'not started'} ${Math.round(limit / 1000)} s after the Restore was created`,
        );
      }
      return this.wait(
        status,
        restore,
        'PodNotRunning',
        `pod ${pod.metadata?.name ?? ''} is ${pod.status?.phase ?? 'not started'}`,
        poll,
      );
    }
    if (node !== image.node && !this.deps.imageTransfer) {
      return this.fail(
        status,
        restore,
        'ImageNotOnNode',
        `pod ${pod.metadata?.name ?? ''} runs on ${node}, the image is on ${image.node}`,
      );
    }
    status.nodeName = node;
    status.restoredPod = pod.metadata?.name;
    status.phase = 'Scheduled';
    this.set(status, restore, {
      type: CONDITIONS.Scheduled,
      status: 'True',
      reason: 'AssignedToNode',
      message: `the agent on ${node} replays into pod ${status.restoredPod ?? ''}`,
    });
    this.set(status, restore, {
      type: CONDITIONS.Ready,
      status: 'Unknown',
      reason: 'WaitingForAgent',
      message: `waiting for the agent on ${node}`,
    });
    return { labelNode: node };
  }

  /** Get the restored pod, creating it from the checkpointed pod the first time. */
  private async ensurePod(
    restore: Restore,
    ckpt: Checkpoint,
    node: string,
    status: RestoreStatus,
  ): Promise<{ pod: V1Pod } | { failed: true }> {
    const ns = restore.metadata.namespace ?? '';
    const name = restoredPodName(restore);
    try {
      const pod = await this.deps.core.readNamespacedPod({ name, namespace: ns });
      const owner = pod.metadata?.ownerReferences?.find((o) => o.controller);
      if (owner?.uid !== restore.metadata.uid) {
        this.fail(status, restore, 'PodExists', `pod ${name} exists and does not belong to this Restore`);
        return { failed: true };
      }
      return { pod };
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    let source: V1Pod;
    try {
      source = await this.deps.core.readNamespacedPod({ name: ckpt.spec.podName, namespace: ns });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      this.fail(
        status,
        restore,
        'SourcePodGone',
        `pod ${ckpt.spec.podName}, the template of the restored pod, no longer exists`,
      );
      return { failed: true };
    }
    let body: V1Pod;
    try {
      body = buildRestoredPod(restore, ckpt, source, node, this.deps.launcher);
    } catch (err) {
      if (!(err instanceof RestorePodError)) throw err;
      this.fail(status, restore, err.reason, err.message);
      return { failed: true };
    }
    const pod = await this.deps.core.createNamespacedPod({ namespace: ns, body });
    this.deps.events.record(
      restore,
      'Normal',
      'PodCreated',
      `created pod ${name} on ${node} with the launcher`,
    );
    return { pod };
  }

  /** Scheduled: the agent's Replayed decides. */
  private judge(restore: Restore, status: RestoreStatus): Step {
    const labelNode = restore.metadata.labels?.[NODE_LABEL] === status.nodeName ? undefined : status.nodeName;
    const replayed = findCondition(status.conditions, CONDITIONS.Replayed);
    if (!replayed || replayed.status === 'Unknown') return { labelNode };
    if (replayed.status === 'False') {
      this.fail(status, restore, replayed.reason, replayed.message);
      return { labelNode };
    }
    status.phase = 'Ready';
    this.set(status, restore, {
      type: CONDITIONS.Ready,
      status: 'True',
      reason: 'Restored',
      message: replayed.message,
    });
    return { labelNode };
  }

  private wait(
    status: RestoreStatus,
    restore: Restore,
    reason: string,
    message: string,
    requeueAfterMs: number,
  ): Step {
    status.phase = 'Waiting';
    this.set(status, restore, { type: CONDITIONS.Scheduled, status: 'False', reason, message });
    this.set(status, restore, { type: CONDITIONS.Ready, status: 'False', reason, message });
    return { requeueAfterMs };
  }

  private fail(status: RestoreStatus, restore: Restore, reason: string, message: string): Step {
    status.phase = 'Failed';
    if (!isTrue(status.conditions, CONDITIONS.Scheduled)) {
      this.set(status, restore, { type: CONDITIONS.Scheduled, status: 'False', reason, message });
    }
    this.set(status, restore, { type: CONDITIONS.Ready, status: 'False', reason, message });
    return {};
  }

  private set(
    status: RestoreStatus,
    restore: Restore,
    input: Omit<ConditionInput, 'observedGeneration'>,
  ): void {
    status.conditions = setCondition(
      status.conditions,
      { ...input, observedGeneration: restore.metadata.generation },
      this.now(),
    );
  }

  private async save(restore: Restore, status: RestoreStatus): Promise<void> {
    status.conditions = withFailedCondition(
      status.conditions,
      status.phase === 'Failed',
      restore.metadata.generation,
      this.now(),
    );
    if (same(restore.status ?? {}, status)) return;
    await this.deps.restores.replaceStatus({ ...clone(restore), status });
    announceTransitions(this.deps.events, restore, restore.status?.conditions, status.conditions, [
      CONDITIONS.Scheduled,
      CONDITIONS.Ready,
      CONDITIONS.InvalidSpec,
    ]);
    const finished = (p?: string): boolean => p === 'Ready' || p === 'Failed';
    if (this.deps.metrics && finished(status.phase) && !finished(restore.status?.phase)) {
      const created = Date.parse(restore.metadata.creationTimestamp ?? '');
      if (!Number.isNaN(created))
        this.deps.metrics.restoreSeconds.observe((this.now().getTime() - created) / 1000);
    }
  }
}
