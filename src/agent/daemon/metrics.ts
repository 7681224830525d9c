/** The agent's Prometheus metrics (its own Registry). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { registerBuildInfo } from '../../kube/build-info.js';
import type { ReconcileObserver } from '../../kube/reconciler.js';

export interface AgentMetrics extends ReconcileObserver {
  registry: Registry;
  captures: Counter;
  restores: Counter;
  imagesDeleted: Counter;
  freezeSeconds: Histogram;
  captureSeconds: Histogram;
  replaySeconds: Histogram;
  fdsCaptured: Counter;
  fdsReplayed: Counter;
  leaks: Counter;
  /** Image bytes received from other nodes' agents, every attempt's. */
  transferBytes: Counter;
  /** Fetch attempts that failed and were tried again. */
  transferRetries: Counter;
  /** Report the pods this agent holds frozen when scraped. */
  trackFrozenPods(count: () => number): void;
}

export function agentMetrics(defaults = false): AgentMetrics {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  registerBuildInfo(registry);
  let frozenPods: () => number = () => 0;
  new Gauge({
    name: 'fdckpt_agent_frozen_pods',
    help: 'Pods this agent holds frozen now: captures in progress and pods left frozen (afterCapture Stop) for a migration.',
    registers,
    collect() {
      this.set(frozenPods());
    },
  });
  const reconciles = new Counter({
    name: 'fdckpt_agent_reconcile_total',
    help: 'Agent reconciles by kind and outcome.',
    labelNames: ['kind', 'outcome'],
    registers,
  });
  const seconds = [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 30];
  const duration = new Histogram({
    name: 'fdckpt_agent_reconcile_duration_seconds',
    help: 'Agent reconcile time by kind.',
    labelNames: ['kind'],
    buckets: seconds,
    registers,
  });
  return {
    registry,
    trackFrozenPods: (count) => {
      frozenPods = count;
    },
    transferBytes: new Counter({
      name: 'fdckpt_agent_transfer_bytes_total',
      help: "Image bytes received from other nodes' agents (every attempt's, resumed ones included).",
      registers,
    }),
    transferRetries: new Counter({
      name: 'fdckpt_agent_transfer_retries_total',
      help: 'Image fetch attempts that failed and were tried again.',
      registers,
    }),
    observe(kind, outcome, s) {
      reconciles.inc({ kind, outcome });
      duration.observe({ kind }, s);
    },
    captures: new Counter({
      name: 'fdckpt_agent_captures_total',
      help: 'Pod captures by outcome (captured, refused, failed).',
      labelNames: ['outcome'],
      registers,
    }),
    restores: new Counter({
      name: 'fdckpt_agent_restores_total',
      help: 'Replays by outcome (replayed, failed).',
      labelNames: ['outcome'],
      registers,
    }),
    imagesDeleted: new Counter({
      name: 'fdckpt_agent_images_deleted_total',
      help: 'Images deleted from this node.',
      registers,
    }),
    freezeSeconds: new Histogram({
      name: 'fdckpt_agent_freeze_seconds',
      help: 'Time a pod stayed frozen for a capture.',
      buckets: seconds,
      registers,
    }),
    captureSeconds: new Histogram({
      name: 'fdckpt_agent_capture_seconds',
      help: 'Time reading the fd tables.',
      buckets: seconds,
      registers,
    }),
    replaySeconds: new Histogram({
      name: 'fdckpt_agent_replay_seconds',
      help: 'Time replaying a table into a launcher.',
      buckets: seconds,
      registers,
    }),
    fdsCaptured: new Counter({
      name: 'fdckpt_agent_fds_captured_total',
      help: 'fds captured on this node.',
      registers,
    }),
    fdsReplayed: new Counter({
      name: 'fdckpt_agent_fds_replayed_total',
      help: 'fds replayed on this node.',
      registers,
    }),
    leaks: new Counter({
      name: 'fdckpt_agent_leaks_total',
      help: 'Leaks found on this node, by object type.',
      labelNames: ['type'],
      registers,
    }),
  };
}
