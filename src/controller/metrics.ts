/**
 * The controller's Prometheus metrics. Each component gets its own Registry
 * (tests run several in one process).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ReconcileObserver } from './runtime/controller.js';

export interface ControllerMetrics extends ReconcileObserver {
  registry: Registry;
  /** Report the depth of a kind's queue when scraped. */
  trackQueue(kind: string, depth: () => number): void;
  checkpointSeconds: Histogram;
  restoreSeconds: Histogram;
  fdsCaptured: Counter;
  leaks: Counter;
}

export function controllerMetrics(defaults = false): ControllerMetrics {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry });
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
  return {
    registry,
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
