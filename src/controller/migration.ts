/**
 * The Migration reconciler. A level-based state machine over status.phase:
 *
 *   Pending → Checkpointing → Restoring → Finishing → Succeeded
 *                  └──────────────┴─→ RollingBack → Failed
 *
 * Pending: choose the target node, create the transfer token Secret and the
 * Checkpoint (afterCapture Stop: the source stays frozen). Checkpointing: once
 * the Checkpoint is Ready, create the Restore (a new pod on the target node;
 * its agent fetches the image from the source's agent). Restoring: once the
 * Restore is Ready and its pod Running, delete the source. Any failure before
 * the source is deleted rolls back: the Restore and its pod go, the source
 * node's agent thaws the source, and the Migration is Failed with the reason.
 * The source is never deleted unless the target runs with its table.
 */
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import type { Checkpoint, ConditionInput, Migration, MigrationStatus, Restore } from '../api/index.js';
import {
  CONDITIONS,
  MIGRATION,
  MIGRATION_CONDITIONS as MC,
  MIGRATION_LABEL,
  THAW_ANNOTATION,
  THAWED_CONDITION,
  findCondition,
  isTrue,
  setCondition,
  transferSecretName,
  validateMigrationSpec,
} from '../api/index.js';
import type { EventRecorder } from './events.js';
import type { ResourceClient } from './kube.js';
import { clone, same } from './kube.js';
import { chooseTarget, controllingOwner, msBetween } from './migration-nodes.js';
import {
  createCheckpointFor,
  createRestoreFor,
  createTokenSecret,
  deleteIfPresent,
  readOrUndefined,
} from './migration-objects.js';
import type { Reconciler, Result } from './runtime/controller.js';
import { TerminalError } from './runtime/errors.js';
import { splitKey } from './runtime/informer.js';
import { announceTransitions } from './transitions.js';

export interface MigrationReconcilerDeps {
  migrations: ResourceClient<Migration>;
  checkpoints: ResourceClient<Checkpoint>;
  restores: ResourceClient<Restore>;
  core: CoreV1Api;
  events: EventRecorder;
  now?: () => Date;
  /** How often to look again at what is not watched (pods, nodes). Default 1 s. */
  pollMs?: number;
}

type Step = Result;
const DONE: Step = {};

/** The name of the pod a Migration creates on the target node. */
export function targetPodName(mig: Migration): string {
  return `${mig.spec.podName}-${(mig.metadata.uid ?? 'x').replace(/-/g, '').slice(0, 6)}`;
}

export class MigrationReconciler implements Reconciler {
  readonly kind = MIGRATION.kind;
  private readonly now: () => Date;
  private readonly poll: number;

  constructor(private readonly deps: MigrationReconcilerDeps) {
    this.now = deps.now ?? ((): Date => new Date());
    this.poll = deps.pollMs ?? 1_000;
  }

  async reconcile(key: string): Promise<Result> {
    const { namespace, name } = splitKey(key);
    const mig = await this.deps.migrations.find(namespace, name);
    if (!mig) return {}; // gone: nothing to reconcile
    // What the Migration created is owned by it and garbage-collected with it.
    if (mig.metadata.deletionTimestamp) return {};
    const phase = mig.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return {};
    const status = clone(mig.status ?? {});
    status.observedGeneration = mig.metadata.generation;
    const errors = validateMigrationSpec(mig.spec);
    if (errors.length > 0) {
      this.set(status, mig, {
        type: MC.InvalidSpec,
        status: 'True',
        reason: 'InvalidSpec',
        message: errors.join('; '),
      });
      this.finish(status, mig, 'Failed', 'InvalidSpec', errors.join('; '));
      await this.save(mig, status);
      throw new TerminalError(`invalid spec: ${errors.join('; ')}`);
    }
    let step: Step;
    switch (status.phase) {
      case undefined:
      case 'Pending':
        step = await this.start(mig, status);
        break;
      case 'Checkpointing':
        step = await this.checkpointing(mig, status);
        break;
      case 'Replacing':
        step = await this.replacing(mig, status);
        break;
      case 'Restoring':
        step = await this.restoring(mig, status);
        break;
      case 'Finishing':
        step = await this.finishing(mig, status);
        break;
      default:
        step = await this.rollingBack(mig, status);
        break;
    }
    await this.save(mig, status);
    return step;
  }

  /** Pending: the source must run; pick the target; token and Checkpoint. */
  private async start(mig: Migration, status: MigrationStatus): Promise<Step> {
    const ns = mig.metadata.namespace ?? '';
    status.startedAt ??= this.now().toISOString();
    const pod = await readOrUndefined(() =>
      this.deps.core.readNamespacedPod({ name: mig.spec.podName, namespace: ns }),
    );
    if (!pod)
      return this.finish(
        status,
        mig,
        'Failed',
        'SourcePodNotFound',
        `pod ${mig.spec.podName} does not exist`,
      );
    const source = pod.spec?.nodeName;
    if (!source || pod.status?.phase !== 'Running') {
      if (pod.status?.phase === 'Pending' || !pod.status?.phase) {
        status.phase = 'Pending';
        this.set(status, mig, {
          type: MC.Ready,
          status: 'False',
          reason: 'SourceNotRunning',
          message: `pod ${mig.spec.podName} is not running yet`,
        });
        return { requeueAfterMs: this.poll };
      }
      return this.finish(
        status,
        mig,
        'Failed',
        'SourceNotRunning',
        `pod ${mig.spec.podName} is ${pod.status?.phase ?? ''}`,
      );
    }
    const nodes = (await this.deps.core.listNode()).items;
    const target = chooseTarget(nodes, source, mig.spec.targetNode);
    if ('error' in target) return this.finish(status, mig, 'Failed', 'NoTargetNode', target.error);
    // Owned pods are deleted and recreated by their owner; the webhook pins the replacement.
    const owner = controllingOwner(pod);
    const ownerManaged = owner !== undefined;
    const name = mig.metadata.name ?? '';
    const labels = { [MIGRATION_LABEL]: name };
    await createTokenSecret(this.deps.core, mig, labels);
    await createCheckpointFor(this.deps.checkpoints, mig, labels);
    Object.assign(status, {
      phase: 'Checkpointing',
      sourceNode: source,
      sourcePod: mig.spec.podName,
      sourcePodUID: pod.metadata?.uid,
      ownerManaged,
      ...(owner ? { ownerUID: owner.uid, ownerKind: owner.kind } : {}),
      targetNode: target.node,
      checkpointName: name,
    } satisfies MigrationStatus);
    this.set(status, mig, {
      type: MC.Checkpointed,
      status: 'Unknown',
      reason: 'Capturing',
      message: `capturing pod ${mig.spec.podName} on ${source}`,
    });
    this.set(status, mig, {
      type: MC.Ready,
      status: 'False',
      reason: 'InProgress',
      message: `moving pod ${mig.spec.podName} from ${source} to ${target.node}`,
    });
    return { requeueAfterMs: this.poll };
  }

  /** Checkpointing: wait for a Ready Checkpoint, then create the Restore on the target. */
  private async checkpointing(mig: Migration, status: MigrationStatus): Promise<Step> {
    const ns = mig.metadata.namespace ?? '';
    const ckpt = await readOrUndefined(() => this.deps.checkpoints.get(ns, status.checkpointName ?? ''));
    if (!ckpt)
      return this.rollback(
        mig,
        status,
        'CheckpointGone',
        `checkpoint ${status.checkpointName ?? ''} was deleted`,
      );
    const ready = findCondition(ckpt.status?.conditions, CONDITIONS.Ready);
    if (ckpt.status?.phase === 'Failed') {
      return this.rollback(
        mig,
        status,
        'CheckpointFailed',
        `checkpoint ${ckpt.metadata.name ?? ''}: ${ready?.message ?? 'failed'}`,
      );
    }
    if (ckpt.status?.phase !== 'Ready' || !ready || ready.status !== 'True') {
      return this.timedOut(mig, status) ?? { requeueAfterMs: this.poll };
    }
    if (!ckpt.status.image)
      return this.rollback(mig, status, 'NoImage', `checkpoint ${ckpt.metadata.name ?? ''} wrote no image`);
    status.capturedAt ??= this.now().toISOString();
    if (ckpt.status.durations?.frozenAt) status.frozenAt = ckpt.status.durations.frozenAt;
    status.timings = {
      ...status.timings,
      freezeMs: ckpt.status.durations?.freezeMs,
      captureMs: ckpt.status.durations?.captureMs,
    };
    this.set(status, mig, {
      type: MC.Checkpointed,
      status: 'True',
      reason: 'Captured',
      message: `${ckpt.status.totalFds ?? 0} fds captured; image ${ckpt.status.image.size} bytes on ${ckpt.status.image.node}`,
    });
    if (status.ownerManaged) return this.replaceSource(mig, status);
    const name = mig.metadata.name ?? '';
    const podName = targetPodName(mig);
    await createRestoreFor(this.deps.restores, mig, {
      newPod: { name: podName, nodeName: status.targetNode },
    });
    status.restoreName = name;
    status.targetPod = podName;
    status.phase = 'Restoring';
    this.set(status, mig, {
      type: MC.Restored,
      status: 'Unknown',
      reason: 'Restoring',
      message: `restoring into pod ${podName} on ${status.targetNode ?? ''}`,
    });
    return { requeueAfterMs: this.poll };
  }

  /**
   * Owner-managed: Replacing is stored first; the next step deletes the (frozen)
   * source so that its owner makes a replacement, which the webhook pins to the
   * target and labels for us. In that order, because the owner recreates the pod
   * at once and the webhook knows the replacement only from a Replacing Migration.
   */
  private replaceSource(mig: Migration, status: MigrationStatus): Step {
    status.phase = 'Replacing';
    this.set(status, mig, {
      type: MC.Restored,
      status: 'Unknown',
      reason: 'WaitingForReplacement',
      message: `pod ${status.sourcePod ?? ''} is deleted for its ${status.ownerKind ?? 'owner'} to recreate it on ${status.targetNode ?? ''}`,
    });
    // Soon: the source goes in the next step, and it is frozen meanwhile.
    return { requeueAfterMs: 0 };
  }

  /** Replacing: delete the source (once), find the replacement the webhook labelled, bind a Restore to it. */
  private async replacing(mig: Migration, status: MigrationStatus): Promise<Step> {
    const ns = mig.metadata.namespace ?? '';
    const name = mig.metadata.name ?? '';
    const node = await readOrUndefined(() => this.deps.core.readNode({ name: status.targetNode ?? '' }));
    if (!node)
      return this.rollback(mig, status, 'TargetNodeGone', `node ${status.targetNode ?? ''} no longer exists`);
    const source = await readOrUndefined(() =>
      this.deps.core.readNamespacedPod({ name: status.sourcePod ?? '', namespace: ns }),
    );
    // Not a namesake (a StatefulSet's replacement has the source's name), and only once.
    if (source?.metadata?.uid === status.sourcePodUID && !source?.metadata?.deletionTimestamp) {
      await deleteIfPresent(() =>
        this.deps.core.deleteNamespacedPod({
          name: status.sourcePod ?? '',
          namespace: ns,
          body: { preconditions: { uid: status.sourcePodUID } },
        }),
      );
    }
    const pods = await this.deps.core.listNamespacedPod({
      namespace: ns,
      labelSelector: `${MIGRATION_LABEL}=${name}`,
    });
    const pod = pods.items.find(
      (p) => !p.metadata?.deletionTimestamp && p.metadata?.uid !== status.sourcePodUID,
    );
    if (!pod) return this.timedOut(mig, status) ?? { requeueAfterMs: this.poll };
    status.targetPod = pod.metadata?.name;
    await createRestoreFor(this.deps.restores, mig, { podName: status.targetPod });
    status.restoreName = name;
    status.phase = 'Restoring';
    this.set(status, mig, {
      type: MC.Restored,
      status: 'Unknown',
      reason: 'Restoring',
      message: `restoring into pod ${status.targetPod ?? ''} on ${status.targetNode ?? ''}`,
    });
    return { requeueAfterMs: this.poll };
  }

  /** Restoring: the target node must stay; wait for the Restore and a Running target pod. */
  private async restoring(mig: Migration, status: MigrationStatus): Promise<Step> {
    const ns = mig.metadata.namespace ?? '';
    const node = await readOrUndefined(() => this.deps.core.readNode({ name: status.targetNode ?? '' }));
    if (!node)
      return this.rollback(mig, status, 'TargetNodeGone', `node ${status.targetNode ?? ''} no longer exists`);
    const restore = await readOrUndefined(() => this.deps.restores.get(ns, status.restoreName ?? ''));
    if (!restore)
      return this.rollback(mig, status, 'RestoreGone', `restore ${status.restoreName ?? ''} was deleted`);
    const ready = findCondition(restore.status?.conditions, CONDITIONS.Ready);
    if (restore.status?.phase === 'Failed') {
      const replayed = findCondition(restore.status.conditions, CONDITIONS.Replayed);
      const reason = replayed?.status === 'False' ? replayed.reason : (ready?.reason ?? 'RestoreFailed');
      return this.rollback(
        mig,
        status,
        reason,
        `restore ${restore.metadata.name ?? ''}: ${replayed?.message ?? ready?.message ?? 'failed'}`,
      );
    }
    const pod = restore.status?.phase === 'Ready' ? await this.targetPod(ns, status) : undefined;
    if (!pod || pod.status?.phase !== 'Running')
      return this.timedOut(mig, status) ?? { requeueAfterMs: this.poll };
    status.restoredAt ??= this.now().toISOString();
    const durations = restore.status?.durations;
    status.timings = {
      ...status.timings,
      transferMs: durations?.transferMs ?? 0,
      restoreMs: durations?.replayMs,
      // The agents' clocks: freeze asked → program let go. Else the controller's view (a lower bound).
      downtimeMs:
        msBetween(status.frozenAt, durations?.replayedAt) ??
        (status.timings?.freezeMs ?? 0) + (msBetween(status.capturedAt, status.restoredAt) ?? 0),
    };
    this.set(status, mig, {
      type: MC.Restored,
      status: 'True',
      reason: 'Replayed',
      message: ready?.message ?? `pod ${status.targetPod ?? ''} runs on ${status.targetNode ?? ''}`,
    });
    status.phase = 'Finishing';
    return this.finishing(mig, status);
  }

  /** Finishing: the target runs; release it from the Restore and delete the source. */
  private async finishing(mig: Migration, status: MigrationStatus): Promise<Step> {
    const ns = mig.metadata.namespace ?? '';
    const target = await this.targetPod(ns, status);
    if (!status.ownerManaged && target?.metadata?.ownerReferences?.length) {
      // The migrated workload must outlive the Migration and its Restore.
      await this.deps.core.patchNamespacedPod({
        name: status.targetPod ?? '',
        namespace: ns,
        body: [{ op: 'remove', path: '/metadata/ownerReferences' }],
      });
    }
    const source = await readOrUndefined(() =>
      this.deps.core.readNamespacedPod({ name: status.sourcePod ?? '', namespace: ns }),
    );
    if (source && source.metadata?.uid === status.sourcePodUID) {
      if (!source.metadata?.deletionTimestamp) {
        await deleteIfPresent(() =>
          this.deps.core.deleteNamespacedPod({
            name: status.sourcePod ?? '',
            namespace: ns,
            body: { preconditions: { uid: status.sourcePodUID } },
          }),
        );
        this.deps.events.record(
          mig,
          'Normal',
          'SourceDeleting',
          `deleting pod ${status.sourcePod ?? ''} on ${status.sourceNode ?? ''}`,
        );
      }
      return { requeueAfterMs: this.poll };
    }
    await this.dropToken(mig);
    this.set(status, mig, {
      type: MC.SourceDeleted,
      status: 'True',
      reason: 'SourceDeleted',
      message: `pod ${status.sourcePod ?? ''} on ${status.sourceNode ?? ''} is gone`,
    });
    return this.finish(
      status,
      mig,
      'Succeeded',
      'Migrated',
      `pod ${status.sourcePod ?? ''} now runs as ${status.targetPod ?? ''} on ${status.targetNode ?? ''}`,
    );
  }

  /** Enter RollingBack and take the first rollback steps at once. */
  private async rollback(
    mig: Migration,
    status: MigrationStatus,
    reason: string,
    message: string,
  ): Promise<Step> {
    status.phase = 'RollingBack';
    status.rollbackReason = `${reason}: ${message}`;
    this.set(status, mig, {
      type: MC.RolledBack,
      status: 'Unknown',
      reason,
      message: `rolling back: ${message}`,
    });
    this.set(status, mig, { type: MC.Ready, status: 'False', reason, message });
    this.deps.events.record(mig, 'Warning', reason, `rolling back: ${message}`);
    return this.rollingBack(mig, status);
  }

  /** RollingBack: remove the target, have the source thawed, then Failed. */
  private async rollingBack(mig: Migration, status: MigrationStatus): Promise<Step> {
    const ns = mig.metadata.namespace ?? '';
    const reason = findCondition(status.conditions, MC.RolledBack)?.reason ?? 'RolledBack';
    const why = status.rollbackReason ?? reason;
    // The target first, at once: it holds a launcher, not yet the workload, and
    // the source is frozen, so two copies never run.
    if (status.targetPod && (await this.targetPod(ns, status))) {
      await deleteIfPresent(() =>
        this.deps.core.deleteNamespacedPod({
          name: status.targetPod ?? '',
          namespace: ns,
          gracePeriodSeconds: 0,
        }),
      );
      if (await this.targetPod(ns, status)) return { requeueAfterMs: this.poll };
    }
    if (status.restoreName) {
      const restore = await readOrUndefined(() => this.deps.restores.get(ns, status.restoreName ?? ''));
      if (restore) await deleteIfPresent(() => this.deps.restores.delete(restore));
    }
    const thawed = await this.thawSource(mig, status);
    if (thawed !== true) {
      this.set(status, mig, { type: MC.RolledBack, status: 'Unknown', reason, message: thawed });
      return { requeueAfterMs: this.poll };
    }
    await this.dropToken(mig);
    this.set(status, mig, {
      type: MC.RolledBack,
      status: 'True',
      reason,
      message: `target removed, source ${status.sourcePod ?? ''} running on ${status.sourceNode ?? ''}: ${why}`,
    });
    return this.finish(status, mig, 'Failed', reason, why);
  }

  /**
   * The source was left frozen after capture; its node's agent thaws it on
   * request (the controller never touches a node). True when done, else what
   * is awaited.
   */
  private async thawSource(mig: Migration, status: MigrationStatus): Promise<true | string> {
    const ns = mig.metadata.namespace ?? '';
    const ckpt = status.checkpointName
      ? await readOrUndefined(() => this.deps.checkpoints.get(ns, status.checkpointName ?? ''))
      : undefined;
    // No capture began: nothing was frozen.
    if (!ckpt || !findCondition(ckpt.status?.conditions, CONDITIONS.Captured)) return true;
    const source = await readOrUndefined(() =>
      this.deps.core.readNamespacedPod({ name: status.sourcePod ?? '', namespace: ns }),
    );
    if (!source || source.metadata?.uid !== status.sourcePodUID) return true;
    if (findCondition(ckpt.status?.conditions, THAWED_CONDITION)?.status === 'True') return true;
    if (!ckpt.metadata.annotations?.[THAW_ANNOTATION]) {
      await this.deps.checkpoints.patchMetadata(ckpt, { annotations: { [THAW_ANNOTATION]: 'true' } });
    }
    return `waiting for the agent on ${status.sourceNode ?? ''} to thaw pod ${status.sourcePod ?? ''}`;
  }

  /** Past the deadline after capture began: roll back. */
  private timedOut(mig: Migration, status: MigrationStatus): Promise<Step> | undefined {
    const limitMs = (mig.spec.timeoutSeconds ?? 300) * 1000;
    const since = msBetween(status.startedAt, this.now().toISOString()) ?? 0;
    if (since <= limitMs) return undefined;
    return this.rollback(
      mig,
      status,
      'Timeout',
      `${status.phase ?? ''} did not finish in ${mig.spec.timeoutSeconds ?? 300} s`,
    );
  }

  private async targetPod(ns: string, status: MigrationStatus): Promise<V1Pod | undefined> {
    return readOrUndefined(() =>
      this.deps.core.readNamespacedPod({ name: status.targetPod ?? '', namespace: ns }),
    );
  }

  private async dropToken(mig: Migration): Promise<void> {
    const ns = mig.metadata.namespace ?? '';
    await deleteIfPresent(() =>
      this.deps.core.deleteNamespacedSecret({
        name: transferSecretName(mig.metadata.name ?? ''),
        namespace: ns,
      }),
    );
  }

  private finish(
    status: MigrationStatus,
    mig: Migration,
    phase: 'Succeeded' | 'Failed',
    reason: string,
    message: string,
  ): Step {
    status.phase = phase;
    status.timings = { ...status.timings, totalMs: msBetween(status.startedAt, this.now().toISOString()) };
    if (phase === 'Failed' && !findCondition(status.conditions, MC.RolledBack))
      status.rollbackReason ??= `${reason}: ${message}`;
    this.set(status, mig, {
      type: MC.Ready,
      status: phase === 'Succeeded' ? 'True' : 'False',
      reason,
      message,
    });
    return DONE;
  }

  private set(
    status: MigrationStatus,
    mig: Migration,
    input: Omit<ConditionInput, 'observedGeneration'>,
  ): void {
    status.conditions = setCondition(
      status.conditions,
      { ...input, observedGeneration: mig.metadata.generation },
      this.now(),
    );
  }

  private async save(mig: Migration, status: MigrationStatus): Promise<void> {
    if (same(mig.status ?? {}, status)) return;
    await this.deps.migrations.replaceStatus({ ...clone(mig), status });
    announceTransitions(this.deps.events, mig, mig.status?.conditions, status.conditions, [
      MC.Checkpointed,
      MC.Restored,
      MC.RolledBack,
      MC.Ready,
    ]);
  }
}

/** For tests and kubectl output: is the migration finished? */
export function migrationDone(mig: Migration): boolean {
  return isTrue(mig.status?.conditions, MC.Ready) || mig.status?.phase === 'Failed';
}
