/**
 * The Checkpoint reconciler (controller side). Level-based: it reads the
 * Checkpoint and the pod, and drives the controller-owned parts of status
 * (phase, observedGeneration, nodeName, podUID; conditions Scheduled, Ready,
 * InvalidSpec). The node agent owns Captured, LeakFree, counts, leaks and the
 * image; the controller reads them to decide Ready.
 *
 * Step order: get → deleting (image cleanup, drop finalizer) → ensure
 * finalizer → validate → act (schedule, then judge the agent's result) → TTL →
 * save status only if it changed.
 */
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import type { Checkpoint, CheckpointStatus } from '../api/index.js';
import {
  CHECKPOINT,
  CONDITIONS,
  IMAGE_FINALIZER,
  NODE_LABEL,
  SOURCE_POD_ANNOTATION,
  type SourcePodRecord,
  findCondition,
  isTrue,
  validateCheckpointSpec,
} from '../api/index.js';
import type { Result, Reconciler } from '../kube/reconciler.js';
import { TerminalError, isNotFound } from '../kube/errors.js';
import { splitKey } from '../kube/informer.js';
import type { EventRecorder } from '../kube/events.js';
import type { ResourceClient } from '../kube/client.js';
import type { ControllerMetrics } from './metrics.js';
import { verdict } from './checkpoint-verdict.js';
import { StatusDraft } from '../kube/status.js';
import { saveAndAnnounce } from './transitions.js';

/** The conditions whose transitions become events (the agent tells its own). */
const ANNOUNCED = [CONDITIONS.Scheduled, CONDITIONS.Checkpointable, CONDITIONS.Ready, CONDITIONS.InvalidSpec];

export interface CheckpointReconcilerDeps {
  checkpoints: ResourceClient<Checkpoint>;
  core: CoreV1Api;
  events: EventRecorder;
  metrics?: ControllerMetrics;
  now?: () => Date;
  /** How often to look again at a pod that is not running yet (pods are not watched). */
  podPollMs?: number;
  /**
   * A pod that does not exist or run this long after the Checkpoint was created
   * fails the Checkpoint (same reason, phase Failed) instead of keeping it
   * Pending for ever. Default 300 s.
   */
  podStartTimeoutMs?: number;
  /** How long a deleting Checkpoint waits for its node's agent before the image is declared orphaned. */
  orphanAfterMs?: number;
}

export class CheckpointReconciler implements Reconciler {
  readonly kind = CHECKPOINT.kind;
  private readonly now: () => Date;

  constructor(private readonly deps: CheckpointReconcilerDeps) {
    this.now = deps.now ?? ((): Date => new Date());
  }

  async reconcile(key: string): Promise<Result> {
    const { namespace, name } = splitKey(key);
    const found = await this.deps.checkpoints.read(namespace, name);
    if (!found) return {}; // gone: nothing to reconcile
    let ckpt = found;
    if (ckpt.metadata.deletionTimestamp) return this.finalize(ckpt);
    if (!(ckpt.metadata.finalizers ?? []).includes(IMAGE_FINALIZER)) {
      ckpt = await this.deps.checkpoints.patchMetadata(ckpt, {
        finalizers: [...(ckpt.metadata.finalizers ?? []), IMAGE_FINALIZER],
      });
    }
    const draft = new StatusDraft(ckpt, { now: this.now });
    const { status } = draft;
    status.observedGeneration = ckpt.metadata.generation;
    const errors = validateCheckpointSpec(ckpt.spec);
    if (errors.length > 0) {
      draft.setCondition({
        type: CONDITIONS.InvalidSpec,
        status: 'True',
        reason: 'InvalidSpec',
        message: errors.join('; '),
      });
      draft.setCondition({
        type: CONDITIONS.Ready,
        status: 'False',
        reason: 'InvalidSpec',
        message: 'the spec is invalid; see InvalidSpec',
      });
      status.phase = 'Failed';
      await this.save(draft);
      throw new TerminalError(`invalid spec: ${errors.join('; ')}`);
    }
    draft.removeCondition(CONDITIONS.InvalidSpec);
    // Failed before a node was chosen (no pod in time, no such container) is final too.
    const result: { requeueAfterMs?: number; labelNode?: string; source?: SourcePodRecord } = status.nodeName
      ? this.judge(draft)
      : status.phase === 'Failed'
        ? {}
        : await this.schedule(draft);
    // The label first: once status says Scheduled, the agent must be able to select the work.
    if (result.labelNode || result.source) {
      ckpt = await this.deps.checkpoints.patchMetadata(ckpt, {
        ...(result.labelNode ? { labels: { [NODE_LABEL]: result.labelNode } } : {}),
        ...(result.source ? { annotations: { [SOURCE_POD_ANNOTATION]: JSON.stringify(result.source) } } : {}),
      });
      draft.rebase(ckpt);
    }
    await this.save(draft);
    return (await this.expire(ckpt, status)) ?? { requeueAfterMs: result.requeueAfterMs };
  }

  /** Deleting: the image must go first (the node's agent deletes it and clears status.image). */
  private async finalize(ckpt: Checkpoint): Promise<Result> {
    const finalizers = ckpt.metadata.finalizers ?? [];
    if (!finalizers.includes(IMAGE_FINALIZER)) return {};
    const image = ckpt.status?.image;
    if (image) {
      const waited = this.now().getTime() - Date.parse(ckpt.metadata.deletionTimestamp ?? '');
      const orphanAfter = this.deps.orphanAfterMs ?? 5 * 60_000;
      if (!(waited > orphanAfter && !(await this.nodeExists(image.node)))) {
        if (ckpt.status?.phase !== 'Deleting') {
          const draft = new StatusDraft(ckpt, { now: this.now });
          draft.status.phase = 'Deleting';
          await this.save(draft);
          this.deps.events.record(
            ckpt,
            'Normal',
            'DeletingImage',
            `waiting for the agent on ${image.node} to delete ${image.path}`,
          );
        }
        // The agent's status write wakes us up; the poll covers an agent that is down.
        return { requeueAfterMs: 30_000 };
      }
      this.deps.events.record(
        ckpt,
        'Warning',
        'ImageOrphaned',
        `node ${image.node} is gone; ${image.path} was not deleted`,
      );
    }
    await this.deps.checkpoints.patchMetadata(ckpt, {
      finalizers: finalizers.filter((f) => f !== IMAGE_FINALIZER),
    });
    return {};
  }

  private async nodeExists(node: string): Promise<boolean> {
    try {
      await this.deps.core.readNode({ name: node });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Not yet scheduled: find the pod's node and assign the work there. */
  private async schedule(
    draft: StatusDraft<Checkpoint>,
  ): Promise<{ requeueAfterMs?: number; labelNode?: string; source?: SourcePodRecord }> {
    const { read: ckpt, status } = draft;
    const poll = this.deps.podPollMs ?? 2_000;
    let pod: V1Pod;
    try {
      pod = await this.deps.core.readNamespacedPod({
        name: ckpt.spec.podName,
        namespace: ckpt.metadata.namespace ?? '',
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return this.pending(draft, 'PodNotFound', `pod ${ckpt.spec.podName} does not exist`, poll * 5);
    }
    const node = pod.spec?.nodeName;
    if (!node || pod.status?.phase !== 'Running') {
      return this.pending(
        draft,
        'PodNotRunning',
        `pod ${ckpt.spec.podName} is ${pod.status?.phase ?? 'not started'}${node ? ` on ${node}` : ', not scheduled'}`,
        poll,
      );
    }
    const wanted = ckpt.spec.containers ?? [];
    const present = new Set((pod.spec?.containers ?? []).map((c) => c.name));
    const missing = wanted.filter((c) => !present.has(c));
    if (missing.length > 0) {
      draft.setCondition({
        type: CONDITIONS.Scheduled,
        status: 'False',
        reason: 'ContainerNotFound',
        message: `pod ${ckpt.spec.podName} has no container ${missing.join(', ')}`,
      });
      draft.setCondition({
        type: CONDITIONS.Ready,
        status: 'False',
        reason: 'ContainerNotFound',
        message: `no container ${missing.join(', ')}`,
      });
      status.phase = 'Failed';
      return {};
    }
    status.nodeName = node;
    status.podUID = pod.metadata?.uid;
    status.phase = 'Scheduled';
    draft.setCondition({
      type: CONDITIONS.Scheduled,
      status: 'True',
      reason: 'AssignedToNode',
      message: `the agent on ${node} captures pod ${ckpt.spec.podName}`,
    });
    draft.setCondition({
      type: CONDITIONS.Ready,
      status: 'Unknown',
      reason: 'WaitingForAgent',
      message: `waiting for the agent on ${node}`,
    });
    // What a restored pod will run, recorded where only the controller writes (metadata).
    const source: SourcePodRecord = {
      uid: pod.metadata?.uid ?? '',
      containers: (pod.spec?.containers ?? []).map((c) => ({
        name: c.name,
        command: c.command ?? [],
        args: c.args ?? [],
      })),
    };
    return { labelNode: node, source };
  }

  /** Waiting for the pod, for a bounded time: past podStartTimeoutMs the wait is a failure. */
  private pending(
    draft: StatusDraft<Checkpoint>,
    reason: string,
    message: string,
    requeueAfterMs: number,
  ): { requeueAfterMs?: number } {
    const { read: ckpt, status } = draft;
    const limit = this.deps.podStartTimeoutMs ?? 300_000;
    const created = Date.parse(ckpt.metadata.creationTimestamp ?? '');
    const left = created + limit - this.now().getTime();
    const expired = !Number.isNaN(created) && left <= 0;
    status.phase = expired ? 'Failed' : 'Pending';
    if (expired) message = `${message} ${Math.round(limit / 1000)} s after the Checkpoint was created`;
    draft.setCondition({ type: CONDITIONS.Scheduled, status: 'False', reason, message });
    draft.setCondition({ type: CONDITIONS.Ready, status: 'False', reason, message });
    return expired ? {} : { requeueAfterMs: Math.min(requeueAfterMs, Math.max(left, 1)) };
  }

  /** Scheduled: turn the agent's Captured and LeakFree into Ready and a phase. */
  private judge(draft: StatusDraft<Checkpoint>): { labelNode?: string } {
    const { read: ckpt, status } = draft;
    const labelNode = ckpt.metadata.labels?.[NODE_LABEL] === status.nodeName ? undefined : status.nodeName;
    const captured = findCondition(status.conditions, CONDITIONS.Captured);
    const leakFree = findCondition(status.conditions, CONDITIONS.LeakFree);
    if (!captured || captured.status === 'Unknown') return { labelNode };
    draft.setCondition(verdict(ckpt, status));
    if (captured.status === 'False') {
      status.phase = 'Failed';
      draft.setCondition({
        type: CONDITIONS.Ready,
        status: 'False',
        reason: captured.reason,
        message: captured.message,
      });
      return { labelNode };
    }
    const leaks = status.leaks?.total ?? 0;
    const policy = ckpt.spec.leakPolicy ?? 'Fail';
    // A dry run has done its work once it looked: the leaks are its verdict (Checkpointable).
    if (leakFree?.status === 'False' && policy === 'Fail' && !ckpt.spec.dryRun) {
      status.phase = 'Failed';
      draft.setCondition({
        type: CONDITIONS.Ready,
        status: 'False',
        reason: 'LeaksFound',
        message: leakFree.message,
      });
      return { labelNode };
    }
    status.phase = 'Ready';
    // A dry run's Ready says it ended, whatever it found; its verdict is Checkpointable.
    const reason = ckpt.spec.dryRun
      ? 'DryRunComplete'
      : leakFree?.status === 'False'
        ? 'ReadyWithLeaks'
        : 'Captured';
    const counted = `${status.totalFds ?? 0} fds in ${status.totalProcesses ?? 0} processes`;
    const message =
      reason === 'DryRunComplete'
        ? `dry run: ${counted}, no image written; ${isTrue(status.conditions, CONDITIONS.Checkpointable) ? 'checkpointable' : 'not checkpointable, see Checkpointable'}`
        : reason === 'ReadyWithLeaks'
          ? `${leaks} leak(s) ignored by leakPolicy ${policy}: ${leakFree?.message ?? ''}`
          : `${counted}; image ${status.image?.path ?? '?'} on ${status.image?.node ?? '?'}`;
    draft.setCondition({ type: CONDITIONS.Ready, status: 'True', reason, message });
    return { labelNode };
  }

  /** TTL after a finished checkpoint: delete it (the finalizer then removes the image). */
  private async expire(ckpt: Checkpoint, status: CheckpointStatus): Promise<Result | undefined> {
    const ttl = ckpt.spec.ttlSecondsAfterFinished;
    if (ttl === undefined || (status.phase !== 'Ready' && status.phase !== 'Failed')) return undefined;
    const finished = Date.parse(findCondition(status.conditions, CONDITIONS.Ready)?.lastTransitionTime ?? '');
    if (Number.isNaN(finished)) return undefined;
    const left = finished + ttl * 1000 - this.now().getTime();
    if (left > 0) return { requeueAfterMs: left };
    this.deps.events.record(ckpt, 'Normal', 'Expired', `ttlSecondsAfterFinished ${ttl} passed; deleting`);
    try {
      await this.deps.checkpoints.delete(ckpt);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    return {};
  }

  /** Write status only when it changed, with events and metrics for the transitions. */
  private async save(draft: StatusDraft<Checkpoint>): Promise<void> {
    const { read: ckpt, status } = draft;
    const failed = status.phase === 'Failed';
    if (!(await saveAndAnnounce(this.deps.checkpoints, draft, this.deps.events, ANNOUNCED, failed))) return;
    const finished = (p?: string): boolean => p === 'Ready' || p === 'Failed';
    if (this.deps.metrics && finished(status.phase) && !finished(ckpt.status?.phase)) {
      const created = Date.parse(ckpt.metadata.creationTimestamp ?? '');
      if (!Number.isNaN(created))
        this.deps.metrics.checkpointSeconds.observe((this.now().getTime() - created) / 1000);
      if (status.phase === 'Ready') this.deps.metrics.fdsCaptured.inc(status.totalFds ?? 0);
      for (const leak of status.leaks?.items ?? []) this.deps.metrics.leaks.inc({ type: leak.type });
    }
  }
}
