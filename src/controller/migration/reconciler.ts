/**
 * The Migration reconciler. A level-based state machine over status.phase:
 *
 *   Pending → Checkpointing → [Replacing →] Restoring → Finishing → Succeeded
 *                  └──────────────┴─────────────┴─→ RollingBack → Failed
 *
 * Pending: choose the target node, create the
 * Checkpoint (afterCapture Stop: the source stays frozen). Checkpointing: once
 * the Checkpoint is Ready, create the Restore (a new pod on the target node;
 * its agent fetches the image from the source's agent). Restoring: once the
 * Restore is Ready and its pod Running, delete the source. Any failure before
 * the source is deleted rolls back: the Restore and its pod go, the source
 * node's agent thaws the source, and the Migration is Failed with the reason.
 * The source is never deleted unless the target runs with its table.
 *
 * This module dispatches on the phase; the steps are in steps.ts,
 * the rollback in rollback.ts, the status helpers in
 * status.ts and the timings in timings.ts.
 */
import { MIGRATION, MIGRATION_CONDITIONS as MC, validateMigrationSpec } from '../../api/index.js';
import { rollingBack } from './rollback.js';
import type { MigrationReconcilerDeps, Step, StepContext } from './status.js';
import { finishMigration, saveMigration, setMigrationCondition } from './status.js';
import { checkpointing, finishing, replacing, restoring, start } from './steps.js';
import type { Reconciler, Result } from '../../kube/reconciler.js';
import { TerminalError } from '../../kube/errors.js';
import { splitKey } from '../../kube/informer.js';
import { StatusDraft } from '../../kube/status.js';

export type { MigrationReconcilerDeps } from './status.js';
export { migrationDone } from './status.js';
export { targetPodName } from './steps.js';

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
    const mig = await this.deps.migrations.read(namespace, name);
    if (!mig) return {}; // gone: nothing to reconcile
    // What the Migration created is owned by it and garbage-collected with it.
    if (mig.metadata.deletionTimestamp) return {};
    const phase = mig.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return {};
    const draft = new StatusDraft(mig, { now: this.now });
    draft.status.observedGeneration = mig.metadata.generation;
    const ctx: StepContext = {
      deps: this.deps,
      now: this.now,
      poll: this.poll,
      mig,
      draft,
      status: draft.status,
      ns: mig.metadata.namespace ?? '',
    };
    const errors = validateMigrationSpec(mig.spec);
    if (errors.length > 0) {
      setMigrationCondition(ctx, {
        type: MC.InvalidSpec,
        status: 'True',
        reason: 'InvalidSpec',
        message: errors.join('; '),
      });
      finishMigration(ctx, 'Failed', 'InvalidSpec', errors.join('; '));
      await saveMigration(ctx);
      throw new TerminalError(`invalid spec: ${errors.join('; ')}`);
    }
    const step = await this.step(ctx);
    await saveMigration(ctx);
    return step;
  }

  private step(ctx: StepContext): Promise<Step> {
    switch (ctx.status.phase) {
      case undefined:
      case 'Pending':
        return start(ctx);
      case 'Checkpointing':
        return checkpointing(ctx);
      case 'Replacing':
        return replacing(ctx);
      case 'Restoring':
        return restoring(ctx);
      case 'Finishing':
        return finishing(ctx);
      default:
        return rollingBack(ctx);
    }
  }
}
