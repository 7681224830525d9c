/**
 * The forward phase steps of a Migration, one function per phase:
 *
 *   Pending → Checkpointing → [Replacing →] Restoring → Finishing → Succeeded
 *
 * Each reads what it waits for, changes ctx.status, and returns when to look
 * again; a failure goes to rollback (rollback.ts). The source is
 * never deleted unless the target runs with its table (bare pods).
 */
import type { Migration, MigrationStatus } from '../../api/index.js';
import { CONDITIONS, MIGRATION_CONDITIONS as MC, MIGRATION_LABEL, findCondition } from '../../api/index.js';
import { chooseTarget, controllingOwner } from './placement.js';
import { createCheckpointFor, createRestoreFor, deleteIfPresent, readOrUndefined } from './objects.js';
import { rollback, timedOut } from './rollback.js';
import type { Step, StepContext } from './status.js';
import {
  again,
  finishMigration,
  readSourcePod,
  readTargetPod,
  setMigrationCondition as set,
} from './status.js';
import { captureTimings, restoreTimings } from './timings.js';

/** The name of the pod a Migration creates on the target node. */
export function targetPodName(mig: Migration): string {
  return `${mig.spec.podName}-${(mig.metadata.uid ?? 'x').replace(/-/g, '').slice(0, 6)}`;
}

/** Pending: the source must run; pick the target; token and Checkpoint. */
export async function start(ctx: StepContext): Promise<Step> {
  const { mig, status, ns, deps } = ctx;
  status.startedAt ??= ctx.now().toISOString();
  const pod = await readOrUndefined(() =>
    deps.core.readNamespacedPod({ name: mig.spec.podName, namespace: ns }),
  );
  if (!pod)
    return finishMigration(ctx, 'Failed', 'SourcePodNotFound', `pod ${mig.spec.podName} does not exist`);
  const source = pod.spec?.nodeName;
  if (!source || pod.status?.phase !== 'Running') {
    if (pod.status?.phase === 'Pending' || !pod.status?.phase) {
      status.phase = 'Pending';
      set(ctx, {
        type: MC.Ready,
        status: 'False',
        reason: 'SourceNotRunning',
        message: `pod ${mig.spec.podName} is not running yet`,
      });
      return again(ctx);
    }
    return finishMigration(
      ctx,
      'Failed',
      'SourceNotRunning',
      `pod ${mig.spec.podName} is ${pod.status?.phase ?? ''}`,
    );
  }
  const nodes = (await deps.core.listNode()).items;
  const target = chooseTarget(nodes, source, mig.spec.targetNode);
  if ('error' in target) return finishMigration(ctx, 'Failed', 'NoTargetNode', target.error);
  // Owned pods are deleted and recreated by their owner; the webhook pins the replacement.
  const owner = controllingOwner(pod);
  const ownerManaged = owner !== undefined;
  const name = mig.metadata.name ?? '';
  const labels = { [MIGRATION_LABEL]: name };
  await createCheckpointFor(deps.checkpoints, mig, labels);
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
  set(ctx, {
    type: MC.Checkpointed,
    status: 'Unknown',
    reason: 'Capturing',
    message: `capturing pod ${mig.spec.podName} on ${source}`,
  });
  set(ctx, {
    type: MC.Ready,
    status: 'False',
    reason: 'InProgress',
    message: `moving pod ${mig.spec.podName} from ${source} to ${target.node}`,
  });
  return again(ctx);
}

/** Checkpointing: wait for a Ready Checkpoint, then create the Restore on the target. */
export async function checkpointing(ctx: StepContext): Promise<Step> {
  const { mig, status, ns, deps } = ctx;
  const ckpt = await readOrUndefined(() => deps.checkpoints.get(ns, status.checkpointName ?? ''));
  if (!ckpt) return rollback(ctx, 'CheckpointGone', `checkpoint ${status.checkpointName ?? ''} was deleted`);
  const ready = findCondition(ckpt.status?.conditions, CONDITIONS.Ready);
  if (ckpt.status?.phase === 'Failed') {
    // The Checkpoint's own reason (LeaksFound, UnsupportedFds, CaptureFailed, …) tells
    // whether trying again can help (the drain watcher's retries read it here).
    set(ctx, {
      type: MC.Checkpointed,
      status: 'False',
      reason: ready?.reason ?? 'CheckpointFailed',
      message: ready?.message ?? 'failed',
    });
    return rollback(
      ctx,
      'CheckpointFailed',
      `checkpoint ${ckpt.metadata.name ?? ''}: ${ready?.message ?? 'failed'}`,
    );
  }
  if (ckpt.status?.phase !== 'Ready' || !ready || ready.status !== 'True') {
    return timedOut(ctx) ?? again(ctx);
  }
  if (!ckpt.status.image)
    return rollback(ctx, 'NoImage', `checkpoint ${ckpt.metadata.name ?? ''} wrote no image`);
  captureTimings(status, ckpt, ctx.now());
  set(ctx, {
    type: MC.Checkpointed,
    status: 'True',
    reason: 'Captured',
    message: `${ckpt.status.totalFds ?? 0} fds captured; image ${ckpt.status.image.size} bytes on ${ckpt.status.image.node}`,
  });
  if (status.ownerManaged) return replaceSource(ctx);
  const name = mig.metadata.name ?? '';
  const podName = targetPodName(mig);
  await createRestoreFor(deps.restores, mig, {
    newPod: { name: podName, nodeName: status.targetNode },
  });
  status.restoreName = name;
  status.targetPod = podName;
  status.phase = 'Restoring';
  set(ctx, {
    type: MC.Restored,
    status: 'Unknown',
    reason: 'Restoring',
    message: `restoring into pod ${podName} on ${status.targetNode ?? ''}`,
  });
  return again(ctx);
}

/**
 * Owner-managed: Replacing is stored first; the next step deletes the (frozen)
 * source so that its owner makes a replacement, which the webhook pins to the
 * target and labels for us. In that order, because the owner recreates the pod
 * at once and the webhook knows the replacement only from a Replacing Migration.
 */
function replaceSource(ctx: StepContext): Step {
  const { status } = ctx;
  status.phase = 'Replacing';
  set(ctx, {
    type: MC.Restored,
    status: 'Unknown',
    reason: 'WaitingForReplacement',
    message: `pod ${status.sourcePod ?? ''} is deleted for its ${status.ownerKind ?? 'owner'} to recreate it on ${status.targetNode ?? ''}`,
  });
  // Soon: the source goes in the next step, and it is frozen meanwhile.
  return { requeueAfterMs: 0 };
}

/** Replacing: delete the source (once), find the replacement the webhook labelled, bind a Restore to it. */
export async function replacing(ctx: StepContext): Promise<Step> {
  const { mig, status, ns, deps } = ctx;
  const name = mig.metadata.name ?? '';
  const node = await readOrUndefined(() => deps.core.readNode({ name: status.targetNode ?? '' }));
  if (!node) return rollback(ctx, 'TargetNodeGone', `node ${status.targetNode ?? ''} no longer exists`);
  const source = await readOrUndefined(() =>
    deps.core.readNamespacedPod({ name: status.sourcePod ?? '', namespace: ns }),
  );
  // Not a namesake (a StatefulSet's replacement has the source's name), and only once.
  if (source?.metadata?.uid === status.sourcePodUID && !source?.metadata?.deletionTimestamp) {
    await deleteIfPresent(() =>
      deps.core.deleteNamespacedPod({
        name: status.sourcePod ?? '',
        namespace: ns,
        body: { preconditions: { uid: status.sourcePodUID } },
      }),
    );
  }
  const pods = await deps.core.listNamespacedPod({
    namespace: ns,
    labelSelector: `${MIGRATION_LABEL}=${name}`,
  });
  const pod = pods.items.find(
    (p) => !p.metadata?.deletionTimestamp && p.metadata?.uid !== status.sourcePodUID,
  );
  if (!pod) return timedOut(ctx) ?? again(ctx);
  status.targetPod = pod.metadata?.name;
  await createRestoreFor(deps.restores, mig, { podName: status.targetPod });
  status.restoreName = name;
  status.phase = 'Restoring';
  set(ctx, {
    type: MC.Restored,
    status: 'Unknown',
    reason: 'Restoring',
    message: `restoring into pod ${status.targetPod ?? ''} on ${status.targetNode ?? ''}`,
  });
  return again(ctx);
}

/** Restoring: the target node must stay; wait for the Restore and a Running target pod. */
export async function restoring(ctx: StepContext): Promise<Step> {
  const { status, ns, deps } = ctx;
  const node = await readOrUndefined(() => deps.core.readNode({ name: status.targetNode ?? '' }));
  if (!node) return rollback(ctx, 'TargetNodeGone', `node ${status.targetNode ?? ''} no longer exists`);
  const restore = await readOrUndefined(() => deps.restores.get(ns, status.restoreName ?? ''));
  if (!restore) return rollback(ctx, 'RestoreGone', `restore ${status.restoreName ?? ''} was deleted`);
  const ready = findCondition(restore.status?.conditions, CONDITIONS.Ready);
  if (restore.status?.phase === 'Failed') {
    const replayed = findCondition(restore.status.conditions, CONDITIONS.Replayed);
    const failed = replayed?.status === 'False' ? replayed.reason : (ready?.reason ?? 'RestoreFailed');
    // The Restore may see the target Node gone before this step does (its own check, on
    // its own reconcile): the same fault, told in the Migration's words.
    const reason = failed === 'NodeNotFound' ? 'TargetNodeGone' : failed;
    return rollback(
      ctx,
      reason,
      `restore ${restore.metadata.name ?? ''}: ${replayed?.message ?? ready?.message ?? 'failed'}`,
    );
  }
  const pod = restore.status?.phase === 'Ready' ? await readTargetPod(ctx) : undefined;
  if (!pod || pod.status?.phase !== 'Running') return timedOut(ctx) ?? again(ctx);
  restoreTimings(status, restore, ctx.now());
  set(ctx, {
    type: MC.Restored,
    status: 'True',
    reason: 'Replayed',
    message: ready?.message ?? `pod ${status.targetPod ?? ''} runs on ${status.targetNode ?? ''}`,
  });
  status.phase = 'Finishing';
  return finishing(ctx);
}

/** Finishing: the target runs; release it from the Restore and delete the source. */
export async function finishing(ctx: StepContext): Promise<Step> {
  const { mig, status, ns, deps } = ctx;
  const target = await readTargetPod(ctx);
  if (!status.ownerManaged && target?.metadata?.ownerReferences?.length) {
    // The migrated workload must outlive the Migration and its Restore.
    await deps.core.patchNamespacedPod({
      name: status.targetPod ?? '',
      namespace: ns,
      body: [{ op: 'remove', path: '/metadata/ownerReferences' }],
    });
  }
  const source = await readSourcePod(ctx);
  if (source && source.metadata?.uid === status.sourcePodUID) {
    if (!source.metadata?.deletionTimestamp) {
      await deleteIfPresent(() =>
        deps.core.deleteNamespacedPod({
          name: status.sourcePod ?? '',
          namespace: ns,
          body: { preconditions: { uid: status.sourcePodUID } },
        }),
      );
      deps.events.record(
        mig,
        'Normal',
        'SourceDeleting',
        `deleting pod ${status.sourcePod ?? ''} on ${status.sourceNode ?? ''}`,
      );
    }
    return again(ctx);
  }
  set(ctx, {
    type: MC.SourceDeleted,
    status: 'True',
    reason: 'SourceDeleted',
    message: `pod ${status.sourcePod ?? ''} on ${status.sourceNode ?? ''} is gone`,
  });
  return finishMigration(
    ctx,
    'Succeeded',
    'Migrated',
    `pod ${status.sourcePod ?? ''} now runs as ${status.targetPod ?? ''} on ${status.targetNode ?? ''}`,
  );
}
