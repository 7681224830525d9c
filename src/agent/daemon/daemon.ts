/**
 * The agent process, one per node: watches only the Checkpoints and Restores
 * the controller assigned to this node (label fdckpt.io/node=<node>), and
 * runs them through the NodeEngine. Serves /healthz, /readyz, /metrics.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Checkpoint, Restore } from '../../api/index.js';
import { CHECKPOINT, NODE_LABEL, RESTORE } from '../../api/index.js';
import type { EventRecorder } from '../../kube/events.js';
import { apiEventRecorder } from '../../kube/events.js';
import { ResourceClient, makeClients } from '../../kube/client.js';
import { loopFor, type QueueWorker } from '../../kube/loop.js';
import { runWorkers } from '../../kube/reconciler.js';
import { Informer } from '../../kube/informer.js';
import type { Logger } from '../../kube/log.js';
import { startServer } from '../../kube/health-server.js';
import { AgentCheckpointReconciler } from './checkpoint.js';
import type { NodeEngine } from './engine.js';
import type { AgentMetrics } from './metrics.js';
import { agentMetrics } from './metrics.js';
import { frozenPods } from './frozen.js';
import { AgentRestoreReconciler } from './restore.js';
import type { TransferOptions } from '../migration/wiring.js';
import { startMigrationSupport } from '../migration/wiring.js';
import { freezeJournalOf, thawOrphans } from '../cgroup/journal.js';

/** Thaws what the journal says a dead agent or CLI froze, and logs each outcome. */
function thawJournaled(dir: string, log: Logger): void {
  for (const o of thawOrphans(dir)) {
    const detail = o.detail ? ` (${o.detail})` : '';
    if (o.outcome === 'refused') log.error(`freeze journal: cgroup ${o.cgroup} not thawed${detail}`);
    else log.info(`freeze journal: cgroup ${o.cgroup} ${o.outcome}${detail}`);
  }
}

export interface AgentOptions {
  kc: KubeConfig;
  nodeName: string;
  dataDir: string;
  engine: NodeEngine;
  log: Logger;
  port?: number;
  events?: EventRecorder;
  workers?: number;
  /** Serve and fetch images for migrations, and thaw on rollback (src/agent/migration). */
  transfer?: TransferOptions;
}

export interface RunningAgent {
  port: number;
  metrics: AgentMetrics;
  stop(): Promise<void>;
}

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const { kc, log, nodeName } = options;
  // Before anything else: a previous agent killed mid-capture left its pods frozen.
  thawJournaled(freezeJournalOf(options.dataDir), log);
  const clients = makeClients(kc);
  const metrics = agentMetrics(true);
  const events = options.events ?? apiEventRecorder(clients.core, 'fdckpt-agent', log, nodeName);
  const checkpoints = new ResourceClient<Checkpoint>(clients.custom, CHECKPOINT);
  const restores = new ResourceClient<Restore>(clients.custom, RESTORE);
  const selector = `${NODE_LABEL}=${nodeName}`;
  const ckptLoop = loopFor(
    new Informer<Checkpoint>(
      kc,
      {
        list: () => checkpoints.listAll(selector),
        watchPath: checkpoints.watchPath,
        watchQuery: { labelSelector: selector },
      },
      log,
    ),
  );
  const restoreLoop = loopFor(
    new Informer<Restore>(
      kc,
      {
        list: () => restores.listAll(selector),
        watchPath: restores.watchPath,
        watchQuery: { labelSelector: selector },
      },
      log,
    ),
  );
  // The reconcilers read this node's objects from these caches; others' (a Checkpoint
  // restored here from another node) are outside the selector and read live.
  checkpoints.readThrough(ckptLoop.informer);
  restores.readThrough(restoreLoop.informer);
  metrics.trackFrozenPods(() =>
    frozenPods({
      nodeName,
      dataDir: options.dataDir,
      engine: options.engine,
      checkpoints: () => ckptLoop.informer.list(),
    }),
  );
  const migration = options.transfer
    ? await startMigrationSupport({
        kc,
        clients,
        checkpoints,
        checkpointInformer: ckptLoop.informer,
        restores,
        nodeName,
        dataDir: options.dataDir,
        events,
        log,
        metrics,
        transfer: options.transfer,
      })
    : undefined;
  const deps = {
    nodeName,
    dataDir: options.dataDir,
    engine: options.engine,
    core: clients.core,
    events,
    metrics,
    fetchImage: migration?.fetchImage,
  };
  let stopping = false;
  const server = await startServer({
    port: options.port ?? 8081,
    registry: metrics.registry,
    healthz: () => (stopping ? 'stopping' : undefined),
    readyz: () =>
      stopping
        ? 'stopping'
        : ckptLoop.informer.hasSynced && restoreLoop.informer.hasSynced
          ? undefined
          : 'caches not synced',
  });
  const workers = options.workers ?? 1;
  // Workers start once the caches are filled; until then /readyz says so (the CRDs may not exist yet).
  const queueWorkers: QueueWorker[] = [
    { queue: ckptLoop.queue, reconciler: new AgentCheckpointReconciler(checkpoints, deps) },
    { queue: restoreLoop.queue, reconciler: new AgentRestoreReconciler(restores, checkpoints, deps) },
    ...(migration?.workers ?? []),
  ];
  const done = Promise.all([ckptLoop.informer.start(), restoreLoop.informer.start()]).then(() =>
    Promise.all(
      queueWorkers.map((w) => runWorkers(w.queue, w.reconciler, { workers, log, observer: metrics })),
    ),
  );
  log.info(`agent running on ${nodeName}`);
  return {
    port: server.port,
    metrics,
    async stop() {
      stopping = true;
      for (const w of queueWorkers) w.queue.shutDown();
      // Stop the watches first (an unsynced informer is what `done` may still wait for),
      // then let in-flight captures finish (and thaw) before the process goes.
      await Promise.all([ckptLoop.informer.stop(), restoreLoop.informer.stop()]);
      await done;
      await migration?.stop();
      await server.close();
    },
  };
}
