/**
 * The Restore reconciler (controller side). It waits for a Ready Checkpoint
 * with an image, finds or creates the target pod (a new pod is built from
 * the checkpointed one, on the image's node, launcher injected, owned by the
 * Restore), and once that pod runs assigns the replay to the node's agent.
 * The agent owns Replayed, fdsReplayed and failures; the controller turns
 * Replayed into Ready and a phase.
 */
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import type { Checkpoint, Restore } from '../api/index.js';
import {
  CONDITIONS,
  NODE_LABEL,
  RESTORE,
  RestorePodError,
  findCondition,
  isTrue,
  validateRestoreSpec,
} from '../api/index.js';
import type { Reconciler, Result } from '../kube/reconciler.js';
import { TerminalError, isNotFound } from '../kube/errors.js';
import { splitKey } from '../kube/informer.js';
import type { EventRecorder } from '../kube/events.js';
import type { ResourceClient } from '../kube/client.js';
import type { ControllerMetrics } from './metrics.js';
import type { LauncherOptions } from './restore-pod.js';
import { buildRestoredPod, restoredPodName } from './restore-pod.js';
import { StatusDraft } from '../kube/status.js';
import { saveAndAnnounce } from './transitions.js';

/** The conditions whose transitions become events (the agent tells Replayed itself). */
const ANNOUNCED = [CONDITIONS.Scheduled, CONDITIONS.Ready, CONDITIONS.InvalidSpec];

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
type Draft = StatusDraft<Restore>;

export class RestoreReconciler implements Reconciler {
  readonly kind = RESTORE.kind;
  private readonly now: () => Date;

  constructor(private readonly deps: RestoreReconcilerDeps) {
    this.now = deps.now ?? ((): Date => new Date());
  }

  async reconcile(key: string): Promise<Result> {
    const { namespace, name } = splitKey(key);
    const found = await this.deps.restores.read(namespace, name);
    if (!found) return {}; // gone: nothing to reconcile
    let restore = found;
    // No finalizer: the restored pod is owned by the Restore and garbage-collected with it.
    if (restore.metadata.deletionTimestamp) return {};
    const draft = new StatusDraft(restore, { now: this.now });
    const { status } = draft;
    status.observedGeneration = restore.metadata.generation;
    const errors = validateRestoreSpec(restore.spec);
    if (errors.length > 0) {
      draft.setCondition({
        type: CONDITIONS.InvalidSpec,
        status: 'True',
        reason: 'InvalidSpec',
        message: errors.join('; '),
      });
      this.fail(draft, 'InvalidSpec', 'the spec is invalid; see InvalidSpec');
      await this.save(draft);
      throw new TerminalError(`invalid spec: ${errors.join('; ')}`);
    }
    draft.removeCondition(CONDITIONS.InvalidSpec);
    const step = isTrue(status.conditions, CONDITIONS.Scheduled)
      ? this.judge(draft)
      : status.phase === 'Failed'
        ? {}
        : await this.prepare(draft);
    if (step.labelNode) {
      restore = await this.deps.restores.patchMetadata(restore, { labels: { [NODE_LABEL]: step.labelNode } });
      draft.rebase(restore);
    }
    await this.save(draft);
    if (status.phase === 'Failed') await this.deleteCreatedPod(draft);
    return { requeueAfterMs: step.requeueAfterMs };
  }

  /**
   * A failed Restore's own pod is deleted: its launcher would wait (600 s by
   * default) for a replay that never comes, and a Running pod would say the
   * restore worked. A pod named by target.podName is the user's: left alone.
   */
  private async deleteCreatedPod(draft: Draft): Promise<void> {
    const { read: restore, status } = draft;
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
  private async prepare(draft: Draft): Promise<Step> {
    const { read: restore, status } = draft;
    const poll = this.deps.pollMs ?? 2_000;
    const ns = restore.metadata.namespace ?? '';
    let ckpt: Checkpoint;
    try {
      ckpt = await this.deps.checkpoints.get(ns, restore.spec.checkpointName);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return this.wait(
        draft,
        'CheckpointNotFound',
        `checkpoint ${restore.spec.checkpointName} does not exist`,
        poll * 5,
      );
    }
    if (ckpt.status?.phase === 'Failed') {
      return this.fail(draft, 'CheckpointFailed', `checkpoint ${restore.spec.checkpointName} failed`);
    }
    if (!isTrue(ckpt.status?.conditions, CONDITIONS.Ready)) {
      return this.wait(
        draft,
        'CheckpointNotReady',
        `checkpoint ${restore.spec.checkpointName} is not Ready yet`,
        poll,
      );
    }
    const image = ckpt.status?.image;
    if (!image)
      return this.fail(
        draft,
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
        return this.wait(draft, 'PodNotFound', `pod ${target.podName} does not exist`, poll * 5);
      }
    } else {
      const node = target.newPod?.nodeName ?? image.node;
      if (node !== image.node && !this.deps.imageTransfer) {
        return this.fail(
          draft,
          'ImageNotOnNode',
          `the image is on ${image.node}; copying images between nodes is not supported yet`,
        );
      }
      // A node that does not exist never runs the pod: say so instead of waiting forever.
      try {
        await this.deps.core.readNode({ name: node });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        return this.fail(draft, 'NodeNotFound', `node ${node} does not exist`);
      }
      const created = await this.ensurePod(draft, ckpt, node);
      if (!('pod' in created)) return {};
      pod = created.pod;
    }
    const node = pod.spec?.nodeName;
    const phase = pod.status?.phase;
    if (phase === 'Failed' || phase === 'Succeeded') {
      // The launcher gave up waiting (or the program ended): nothing left to replay into.
      return this.fail(draft, 'PodFinished', `pod ${pod.metadata?.name ?? ''} is ${phase}`);
    }
    if (!node || phase !== 'Running') {
      const created = Date.parse(restore.metadata.creationTimestamp?.toString() ?? '');
      const limit = this.deps.podStartTimeoutMs ?? 300_000;
      const now = this.now().getTime();
      if (!Number.isNaN(created) && now - created > limit) {
        return this.fail(
          draft,
          'PodNotStarted',
          `pod ${pod.metadata?.name ?? ''} is ${phase ?? 'not started'} ${Math.round(limit / 1000)} s after the Restore was created`,
        );
      }
      return this.wait(
        draft,
        'PodNotRunning',
        `pod ${pod.metadata?.name ?? ''} is ${pod.status?.phase ?? 'not started'}`,
        poll,
      );
    }
    if (node !== image.node && !this.deps.imageTransfer) {
      return this.fail(
        draft,
        'ImageNotOnNode',
        `pod ${pod.metadata?.name ?? ''} runs on ${node}, the image is on ${image.node}`,
      );
    }
    status.nodeName = node;
    status.restoredPod = pod.metadata?.name;
    status.phase = 'Scheduled';
    draft.setCondition({
      type: CONDITIONS.Scheduled,
      status: 'True',
      reason: 'AssignedToNode',
      message: `the agent on ${node} replays into pod ${status.restoredPod ?? ''}`,
    });
    draft.setCondition({
      type: CONDITIONS.Ready,
      status: 'Unknown',
      reason: 'WaitingForAgent',
      message: `waiting for the agent on ${node}`,
    });
    return { labelNode: node };
  }

  /** Get the restored pod, creating it from the checkpointed pod the first time. */
  private async ensurePod(
    draft: Draft,
    ckpt: Checkpoint,
    node: string,
  ): Promise<{ pod: V1Pod } | { failed: true }> {
    const restore = draft.read;
    const ns = restore.metadata.namespace ?? '';
    const name = restoredPodName(restore);
    try {
      const pod = await this.deps.core.readNamespacedPod({ name, namespace: ns });
      const owner = pod.metadata?.ownerReferences?.find((o) => o.controller);
      if (owner?.uid !== restore.metadata.uid) {
        this.fail(draft, 'PodExists', `pod ${name} exists and does not belong to this Restore`);
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
        draft,
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
      this.fail(draft, err.reason, err.message);
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
  private judge(draft: Draft): Step {
    const { read: restore, status } = draft;
    const labelNode = restore.metadata.labels?.[NODE_LABEL] === status.nodeName ? undefined : status.nodeName;
    const replayed = findCondition(status.conditions, CONDITIONS.Replayed);
    if (!replayed || replayed.status === 'Unknown') return { labelNode };
    if (replayed.status === 'False') {
      this.fail(draft, replayed.reason, replayed.message);
      return { labelNode };
    }
    status.phase = 'Ready';
    draft.setCondition({
      type: CONDITIONS.Ready,
      status: 'True',
      reason: 'Restored',
      message: replayed.message,
    });
    return { labelNode };
  }

  private wait(draft: Draft, reason: string, message: string, requeueAfterMs: number): Step {
    draft.status.phase = 'Waiting';
    draft.setCondition({ type: CONDITIONS.Scheduled, status: 'False', reason, message });
    draft.setCondition({ type: CONDITIONS.Ready, status: 'False', reason, message });
    return { requeueAfterMs };
  }

  private fail(draft: Draft, reason: string, message: string): Step {
    draft.status.phase = 'Failed';
    if (!isTrue(draft.status.conditions, CONDITIONS.Scheduled)) {
      draft.setCondition({ type: CONDITIONS.Scheduled, status: 'False', reason, message });
    }
    draft.setCondition({ type: CONDITIONS.Ready, status: 'False', reason, message });
    return {};
  }

  /** Write status only when it changed, with events and metrics for the transitions. */
  private async save(draft: Draft): Promise<void> {
    const { read: restore, status } = draft;
    const failed = status.phase === 'Failed';
    if (!(await saveAndAnnounce(this.deps.restores, draft, this.deps.events, ANNOUNCED, failed))) return;
    const finished = (p?: string): boolean => p === 'Ready' || p === 'Failed';
    if (this.deps.metrics && finished(status.phase) && !finished(restore.status?.phase)) {
      const created = Date.parse(restore.metadata.creationTimestamp ?? '');
      if (!Number.isNaN(created))
        this.deps.metrics.restoreSeconds.observe((this.now().getTime() - created) / 1000);
    }
  }
}
