/**
 * What one Migration reconcile works with, and how it writes the outcome: the
 * step context (the Migration, the status being built, the clients), the
 * condition and phase setters, and the status write with its events.
 */
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import type { Checkpoint, Migration, MigrationStatus, Restore } from '../../api/index.js';
import { MIGRATION_CONDITIONS as MC, findCondition, isTrue } from '../../api/index.js';
import type { EventRecorder } from '../../kube/events.js';
import type { ControllerMetrics } from '../metrics.js';
import type { ResourceClient } from '../../kube/client.js';
import { readOrUndefined } from './objects.js';
import { totalTimings } from './timings.js';
import type { Result } from '../../kube/reconciler.js';
import type { ConditionChange, StatusDraft } from '../../kube/status.js';
import { saveAndAnnounce } from '../transitions.js';

/** The conditions whose transitions become events. */
const ANNOUNCED = [MC.Checkpointed, MC.Restored, MC.RolledBack, MC.Ready];

export interface MigrationReconcilerDeps {
  migrations: ResourceClient<Migration>;
  checkpoints: ResourceClient<Checkpoint>;
  restores: ResourceClient<Restore>;
  core: CoreV1Api;
  events: EventRecorder;
  now?: () => Date;
  /** How often to look again at what is not watched (pods, nodes). Default 1 s. */
  pollMs?: number;
  /** Counts finished Migrations and their downtime. */
  metrics?: Pick<ControllerMetrics, 'migrationFinished'>;
}

/** What a phase step asks for next (a reconcile's Result). */
export type Step = Result;
export const DONE: Step = {};

/** One reconcile of one Migration: the steps change `status`; the reconciler saves it once. */
export interface StepContext {
  deps: MigrationReconcilerDeps;
  now: () => Date;
  /** Requeue delay while waiting on what is not watched. */
  poll: number;
  mig: Migration;
  /** The status being built, with the Migration it was read from. */
  draft: StatusDraft<Migration>;
  /** draft.status: the status being built (a copy of the stored one). */
  status: MigrationStatus;
  /** The Migration's namespace, where everything it moves and creates lives. */
  ns: string;
}

/** Look again after the poll interval. */
export function again(ctx: StepContext): Step {
  return { requeueAfterMs: ctx.poll };
}

/** Set a condition, stamped with the Migration's generation. */
export function setMigrationCondition(ctx: StepContext, change: ConditionChange): void {
  ctx.draft.setCondition(change);
}

/** The end: Succeeded or Failed, with Ready saying why, and the total time. */
export function finishMigration(
  ctx: StepContext,
  phase: 'Succeeded' | 'Failed',
  reason: string,
  message: string,
): Step {
  const { status } = ctx;
  status.phase = phase;
  totalTimings(status, ctx.now());
  if (phase === 'Failed' && !findCondition(status.conditions, MC.RolledBack))
    status.rollbackReason ??= `${reason}: ${message}`;
  setMigrationCondition(ctx, {
    type: MC.Ready,
    status: phase === 'Succeeded' ? 'True' : 'False',
    reason,
    message,
  });
  return DONE;
}

/** Write the status if it changed, and tell every condition transition as an event. */
export async function saveMigration(ctx: StepContext): Promise<void> {
  const { mig, status, deps } = ctx;
  const failed = status.phase === 'Failed';
  if (!(await saveAndAnnounce(deps.migrations, ctx.draft, deps.events, ANNOUNCED, failed))) return;
  // Once per Migration: the reconciler never writes a finished Migration's status again.
  const finished = (s?: MigrationStatus): boolean => s?.phase === 'Succeeded' || s?.phase === 'Failed';
  if (finished(status) && !finished(mig.status))
    deps.metrics?.migrationFinished(status, findCondition(status.conditions, MC.Ready)?.reason ?? 'Unknown');
}

/** The pod the Migration restores into, if it exists. */
export async function readTargetPod(ctx: StepContext): Promise<V1Pod | undefined> {
  return readOrUndefined(() =>
    ctx.deps.core.readNamespacedPod({ name: ctx.status.targetPod ?? '', namespace: ctx.ns }),
  );
}

/** The pod being moved, if it (still) exists under its name (check the UID). */
export async function readSourcePod(ctx: StepContext): Promise<V1Pod | undefined> {
  return readOrUndefined(() =>
    ctx.deps.core.readNamespacedPod({ name: ctx.status.sourcePod ?? '', namespace: ctx.ns }),
  );
}

/** For tests and kubectl output: is the migration finished? */
export function migrationDone(mig: Migration): boolean {
  return isTrue(mig.status?.conditions, MC.Ready) || mig.status?.phase === 'Failed';
}
