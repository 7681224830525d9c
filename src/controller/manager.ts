/**
 * The controller process: health/metrics server, leader election, and once
 * leading, informers → keyed queues → reconcilers for Checkpoint and Restore.
 * stop() shuts down in order: stop handing out keys, wait for in-flight
 * reconciles, stop watches, release the lease, close the server.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { CoordinationV1Api } from '@kubernetes/client-node';
import type { Checkpoint, Restore } from '../api/index.js';
import { CHECKPOINT, RESTORE } from '../api/index.js';
import { CheckpointReconciler } from './checkpoint.js';
import { apiEventRecorder } from '../kube/events.js';
import type { EventRecorder } from '../kube/events.js';
import { ResourceClient, makeClients } from '../kube/client.js';
import type { ControllerMetrics } from './metrics.js';
import { controllerMetrics } from './metrics.js';
import { RestoreReconciler } from './restore.js';
import type { DrainRetryOptions } from './drain/retry.js';
import { migrationControllers } from './migration/wiring.js';
import { startControllerWebhook } from './webhook/wiring.js';
import type { PodWebhookOptions } from './webhook/index.js';
import type { LauncherOptions } from './restore-pod.js';
import { runWorkers } from '../kube/reconciler.js';
import { Informer, objectKey } from '../kube/informer.js';
import type { Keyed } from '../kube/informer.js';
import { LeaderElector } from '../kube/leader-election.js';
import type { Logger } from '../kube/log.js';
import { startServer } from '../kube/health-server.js';
import { loopFor } from '../kube/loop.js';
import type { QueueWorker } from '../kube/loop.js';

export interface ControllerOptions {
  kc: KubeConfig;
  log: Logger;
  launcher: LauncherOptions;
  /** Port of /healthz, /readyz, /metrics (0 picks one). */
  port?: number;
  /** Lease namespace and name; without it there is no leader election (one replica only). */
  lease?: {
    namespace: string;
    name: string;
    identity: string;
    leaseDurationSeconds?: number;
    renewDeadlineMs?: number;
    retryPeriodMs?: number;
  };
  workers?: number;
  /** Called when the lease is lost: the process must stop (another replica now acts). */
  onLostLeadership?: () => void;
  events?: EventRecorder;
  /** Migrations and drain watching (src/controller/migration/, drain/; needs the Migration CRD). Default off; `fdckpt controller` turns it on. */
  migrations?: { enabled: boolean; maxConcurrentDrain?: number; drainRetry?: DrainRetryOptions };
  /** Serve the pod admission webhook for owner-managed migrations (every replica serves it). */
  webhook?: PodWebhookOptions;
}

export interface RunningController {
  port: number;
  metrics: ControllerMetrics;
  isLeader(): boolean;
  stop(): Promise<void>;
}

export async function startController(options: ControllerOptions): Promise<RunningController> {
  const { kc, log } = options;
  const clients = makeClients(kc);
  const metrics = controllerMetrics(true);
  const events = options.events ?? apiEventRecorder(clients.core, 'fdckpt-controller', log);
  const checkpoints = new ResourceClient<Checkpoint>(clients.custom, CHECKPOINT);
  const restores = new ResourceClient<Restore>(clients.custom, RESTORE);
  const informers: Informer<Keyed>[] = [];
  const workers: QueueWorker[] = [];
  const running: Promise<void>[] = [];
  let stopping = false;
  let startupError: string | undefined;
  const elector = options.lease
    ? new LeaderElector({ api: kc.makeApiClient(CoordinationV1Api), ...options.lease, log })
    : undefined;
  const synced = (): boolean => informers.length > 0 && informers.every((i) => i.hasSynced);
  const server = await startServer({
    port: options.port ?? 8080,
    registry: metrics.registry,
    healthz: () => (stopping ? 'stopping' : startupError),
    // A standby replica is ready: it is healthy and waiting for the lease.
    readyz: () =>
      stopping
        ? 'stopping'
        : startupError !== undefined
          ? startupError
          : elector && !elector.isLeader
            ? undefined
            : synced()
              ? undefined
              : 'caches not synced',
  });

  const run = async (): Promise<void> => {
    if (elector && !(await elector.acquire(() => options.onLostLeadership?.()))) return;
    if (stopping) return;
    // Each kind's reconciler reads from its own informer's cache, not one GET per reconcile.
    const ckptLoop = loopFor(
      new Informer<Checkpoint>(
        kc,
        { list: () => checkpoints.listAll(), watchPath: checkpoints.watchPath },
        log,
      ),
    );
    checkpoints.readThrough(ckptLoop.informer);
    const restoreLoop = loopFor(
      new Informer<Restore>(kc, { list: () => restores.listAll(), watchPath: restores.watchPath }, log),
    );
    restores.readThrough(restoreLoop.informer);
    // A Restore waits on its Checkpoint: a Checkpoint change wakes the Restores that name it.
    ckptLoop.informer.on({
      update: (_old, c) => {
        for (const r of restoreLoop.informer.list()) {
          if (r.metadata.namespace === c.metadata.namespace && r.spec.checkpointName === c.metadata.name)
            restoreLoop.queue.add(objectKey(r));
        }
      },
    });
    informers.push(ckptLoop.informer, restoreLoop.informer);
    workers.push(
      {
        queue: ckptLoop.queue,
        reconciler: new CheckpointReconciler({ checkpoints, core: clients.core, events, metrics }),
      },
      {
        queue: restoreLoop.queue,
        reconciler: new RestoreReconciler({
          restores,
          checkpoints,
          core: clients.core,
          events,
          launcher: options.launcher,
          metrics,
          imageTransfer: options.migrations?.enabled ?? false,
        }),
      },
    );
    if (options.migrations?.enabled ?? false) {
      const m = migrationControllers({
        kc,
        clients,
        checkpoints,
        restores,
        events,
        log,
        checkpointInformer: ckptLoop.informer,
        restoreInformer: restoreLoop.informer,
        restoreQueue: restoreLoop.queue,
        maxConcurrentDrain: options.migrations?.maxConcurrentDrain,
        drainRetry: options.migrations?.drainRetry,
        metrics,
      });
      informers.push(...m.informers);
      workers.push(...m.workers);
    }
    await Promise.all(informers.map((i) => i.start()));
    if (stopping) return;
    for (const w of workers) {
      metrics.trackQueue(w.reconciler.kind, () => w.queue.length);
      running.push(
        runWorkers(w.queue, w.reconciler, {
          workers: options.workers ?? 2,
          log,
          observer: metrics,
        }),
      );
    }
    log.info('controller running');
  };
  let webhook: Awaited<ReturnType<typeof startControllerWebhook>> | undefined;
  try {
    webhook = options.webhook
      ? await startControllerWebhook({
          kc,
          clients,
          log,
          launcher: options.launcher,
          options: options.webhook,
        })
      : undefined;
  } catch (err) {
    // Fail fast: a controller without its webhook must not serve /healthz as if it worked.
    stopping = true;
    await elector?.stop();
    await server.close();
    throw new Error(`start-up failed: pod webhook: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  const started = run().catch((err: unknown) => {
    // Not started: unhealthy and not ready, saying why, so that the kubelet restarts it.
    startupError = `start-up failed: ${err instanceof Error ? err.message : String(err)}`;
    log.error(`controller: ${startupError}`);
  });

  return {
    port: server.port,
    metrics,
    isLeader: () => elector?.isLeader ?? true,
    async stop() {
      stopping = true;
      for (const w of workers) w.queue.shutDown();
      await elector?.stop();
      await Promise.all(informers.map((i) => i.stop()));
      await started;
      await Promise.all(running);
      await webhook?.stop();
      await server.close();
    },
  };
}
