/**
 * Rolling a Migration back: any failure before the source is deleted ends
 * here. The target pod goes first (it holds a launcher, not yet the
 * workload), then the Restore; the source node's agent is asked to thaw the
 * source it left frozen; then Failed with the failing step's reason.
 */
import {
  CONDITIONS,
  MIGRATION_CONDITIONS as MC,
  THAW_ANNOTATION,
  THAWED_CONDITION,
  findCondition,
} from '../../api/index.js';
import { msBetween } from './placement.js';
import { deleteIfPresent, readOrUndefined } from './objects.js';
import type { Step, StepContext } from './status.js';
import { again, finishMigration, readSourcePod, readTargetPod, setMigrationCondition } from './status.js';

/** Enter RollingBack and take the first rollback steps at once. */
export async function rollback(ctx: StepContext, reason: string, message: string): Promise<Step> {
  const { status } = ctx;
  status.phase = 'RollingBack';
  status.rollbackReason = `${reason}: ${message}`;
  setMigrationCondition(ctx, {
    type: MC.RolledBack,
    status: 'Unknown',
    reason,
    message: `rolling back: ${message}`,
  });
  setMigrationCondition(ctx, { type: MC.Ready, status: 'False', reason, message });
  ctx.deps.events.record(ctx.mig, 'Warning', reason, `rolling back: ${message}`);
  return rollingBack(ctx);
}

/** RollingBack: remove the target, have the source thawed, then Failed. */
export async function rollingBack(ctx: StepContext): Promise<Step> {
  const { status, ns, deps } = ctx;
  const reason = findCondition(status.conditions, MC.RolledBack)?.reason ?? 'RolledBack';
  const why = status.rollbackReason ?? reason;
  // The target first, at once: it holds a launcher, not yet the workload, and
  // the source is frozen, so two copies never run.
  if (status.targetPod && (await readTargetPod(ctx))) {
    await deleteIfPresent(() =>
      deps.core.deleteNamespacedPod({
        name: status.targetPod ?? '',
        namespace: ns,
        gracePeriodSeconds: 0,
      }),
    );
    if (await readTargetPod(ctx)) return again(ctx);
  }
  if (status.restoreName) {
    const restore = await readOrUndefined(() => deps.restores.get(ns, status.restoreName ?? ''));
    if (restore) await deleteIfPresent(() => deps.restores.delete(restore));
  }
  const thawed = await thawSource(ctx);
  if (thawed !== true) {
    setMigrationCondition(ctx, { type: MC.RolledBack, status: 'Unknown', reason, message: thawed });
    return again(ctx);
  }
  setMigrationCondition(ctx, {
    type: MC.RolledBack,
    status: 'True',
    reason,
    message: `target removed, source ${status.sourcePod ?? ''} running on ${status.sourceNode ?? ''}: ${why}`,
  });
  return finishMigration(ctx, 'Failed', reason, why);
}

/**
 * The source was left frozen after capture; its node's agent thaws it on
 * request (the controller never touches a node). True when done, else what
 * is awaited.
 */
async function thawSource(ctx: StepContext): Promise<true | string> {
  const { status, ns, deps } = ctx;
  const ckpt = status.checkpointName
    ? await readOrUndefined(() => deps.checkpoints.get(ns, status.checkpointName ?? ''))
    : undefined;
  // No capture began: nothing was frozen.
  if (!ckpt || !findCondition(ckpt.status?.conditions, CONDITIONS.Captured)) return true;
  const source = await readSourcePod(ctx);
  if (!source || source.metadata?.uid !== status.sourcePodUID) return true;
  if (findCondition(ckpt.status?.conditions, THAWED_CONDITION)?.status === 'True') return true;
  if (!ckpt.metadata.annotations?.[THAW_ANNOTATION]) {
    await deps.checkpoints.patchMetadata(ckpt, { annotations: { [THAW_ANNOTATION]: 'true' } });
  }
  return `waiting for the agent on ${status.sourceNode ?? ''} to thaw pod ${status.sourcePod ?? ''}`;
}

/** Past the deadline after capture began: roll back. */
export function timedOut(ctx: StepContext): Promise<Step> | undefined {
  const { mig, status } = ctx;
  const limitMs = (mig.spec.timeoutSeconds ?? 300) * 1000;
  const since = msBetween(status.startedAt, ctx.now().toISOString()) ?? 0;
  if (since <= limitMs) return undefined;
  return rollback(
    ctx,
    'Timeout',
    `${status.phase ?? ''} did not finish in ${mig.spec.timeoutSeconds ?? 300} s`,
  );
}
