/**
 * The controller's Prometheus metrics. Each component gets its own Registry
 * (tests run several in one process).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MigrationStatus } from '../api/index.js';
import { registerBuildInfo } from '../kube/build-info.js';
import type { ReconcileObserver } from '../kube/reconciler.js';

export interface ControllerMetrics extends ReconcileObserver {
  registry: Registry;
  /** Report the depth of a kind's queue when scraped. */
  trackQueue(kind: string, depth: () => number): void;
  checkpointSeconds: Histogram;
  restoreSeconds: Histogram;
  fdsCaptured: Counter;
  leaks: Counter;
  /** A Migration reached Succeeded or Failed (called once, after its status is written). */
  migrationFinished(status: MigrationStatus, reason: string): void;
}

export function controllerMetrics(defaults = false): ControllerMetrics {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry });
  registerBuildInfo(registry);
  const reconciles = new Counter({
    name: 'fdckpt_reconcile_total',
    help: 'Reconciles, by kind and outcome (success, error, terminal).',
    labelNames: ['kind', 'outcome'],
    registers: [registry],
  });
  const errors = new Counter({
    name: 'fdckpt_reconcile_errors_total',
    help: 'Reconciles that failed (retried or terminal), by kind.',
    labelNames: ['kind'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'fdckpt_reconcile_duration_seconds',
    help: 'Time spent in one reconcile, by kind.',
    labelNames: ['kind'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  const queues = new Map<string, () => number>();
  new Gauge({
    name: 'fdckpt_workqueue_depth',
    help: 'Keys waiting in the work queue, by kind.',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      for (const [kind, depth] of queues) this.set({ kind }, depth());
    },
  });
  const checkpointSeconds = new Histogram({
    name: 'fdckpt_checkpoint_duration_seconds',
    help: 'From Checkpoint creation to Ready or Failed.',
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const restoreSeconds = new Histogram({
    name: 'fdckpt_restore_duration_seconds',
    help: 'From Restore creation to Ready or Failed.',
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const fdsCaptured = new Counter({
    name: 'fdckpt_fds_captured_total',
    help: 'File descriptors in Checkpoints that became Ready.',
    registers: [registry],
  });
  const leaks = new Counter({
    name: 'fdckpt_leaks_total',
    help: 'Leaks reported by finished Checkpoints, by object type.',
    labelNames: ['type'],
    registers: [registry],
  });
  const migrations = new Counter({
    name: 'fdckpt_migrations_total',
    help: 'Finished Migrations, by outcome (Succeeded, Failed) and the reason of their Ready condition.',
    labelNames: ['outcome', 'reason'],
    registers: [registry],
  });
  // What the moved pod's clients see: from the source's freeze to the target's program let go
  // (status.timings.downtimeMs, src/controller/migration/timings.ts).
  const downtime = new Histogram({
    name: 'fdckpt_migration_downtime_seconds',
    help: 'Downtime of Succeeded Migrations: source frozen to target running with its table.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [registry],
  });
  return {
    registry,
    migrationFinished(status, reason) {
      const outcome = status.phase ?? 'Unknown';
      migrations.inc({ outcome, reason });
      const ms = status.timings?.downtimeMs;
      if (outcome === 'Succeeded' && ms !== undefined) downtime.observe(ms / 1000);
    },
    trackQueue: (kind, depth) => queues.set(kind, depth),
    observe(kind, outcome, seconds) {
      reconciles.inc({ kind, outcome });
      if (outcome !== 'success') errors.inc({ kind });
      duration.observe({ kind }, seconds);
    },
    checkpointSeconds,
    restoreSeconds,
    fdsCaptured,
    leaks,
  };
}
