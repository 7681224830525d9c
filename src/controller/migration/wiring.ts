/**
 * The controller's migration loops, added to the manager beside Checkpoint
 * and Restore: Migrations (woken by changes of the Checkpoint and Restore they
 * own), and Nodes for the drain watcher.
 */
import type { KubeConfig, V1Node, V1Pod } from '@kubernetes/client-node';
import type { Checkpoint, Migration, Restore } from '../../api/index.js';
import { MIGRATION, MIGRATION_LABEL, RESTORE_LABEL } from '../../api/index.js';
import { DRAIN_NODE_LABEL, DrainReconciler } from '../drain/reconciler.js';
import type { DrainRetryOptions } from '../drain/retry.js';
import type { EventRecorder } from '../../kube/events.js';
import type { Clients } from '../../kube/client.js';
import { ResourceClient } from '../../kube/client.js';
import { loopFor, type Controllers } from '../../kube/loop.js';
import { MigrationReconciler } from './reconciler.js';
import { Informer } from '../../kube/informer.js';
import type { Keyed, ListResult } from '../../kube/informer.js';
import type { ControllerMetrics } from '../metrics.js';
import type { Logger } from '../../kube/log.js';
import type { WorkQueue } from '../../kube/workqueue.js';

export interface MigrationLoopsDeps {
  kc: KubeConfig;
  clients: Clients;
  checkpoints: ResourceClient<Checkpoint>;
  restores: ResourceClient<Restore>;
  events: EventRecorder;
  log: Logger;
  /** Informers of the manager's other loops: their changes wake the owning Migration. */
  checkpointInformer: Informer<Checkpoint>;
  restoreInformer: Informer<Restore>;
  /** The Restore loop's queue: a change of a pod a Restore waits for wakes that Restore. */
  restoreQueue?: WorkQueue;
  /** Most unfinished Migrations the drain watcher lets run at once. */
  maxConcurrentDrain?: number;
  /** Retries of failed drain Migrations. */
  drainRetry?: DrainRetryOptions;
  metrics?: ControllerMetrics;
}

/** The Migration and drain reconcilers with their queues, and the informers that feed them. */
export function migrationControllers(deps: MigrationLoopsDeps): Controllers {
  const { kc, clients, log } = deps;
  const migrations = new ResourceClient<Migration>(clients.custom, MIGRATION);
  const migLoop = loopFor(
    new Informer<Migration>(kc, { list: () => migrations.listAll(), watchPath: migrations.watchPath }, log),
  );
  migrations.readThrough(migLoop.informer);
  const wake = (obj: { metadata: { namespace?: string; labels?: Record<string, string> } }): void => {
    const owner = obj.metadata.labels?.[MIGRATION_LABEL];
    if (owner) migLoop.queue.add(`${obj.metadata.namespace ?? ''}/${owner}`);
  };
  deps.checkpointInformer.on({ update: (_o, c) => wake(c), delete: wake });
  deps.restoreInformer.on({ update: (_o, r) => wake(r), delete: wake });
  const nodeLoop = loopFor(
    new Informer<V1Node & Keyed>(
      kc,
      {
        list: async () => (await clients.core.listNode()) as ListResult<V1Node & Keyed>,
        watchPath: '/api/v1/nodes',
      },
      log,
    ),
  );
  // A drain Migration that ends wakes its node's drain watcher (a retry or the next pod).
  migLoop.informer.on({
    update: (_o, m) => {
      const node = m.metadata.labels?.[DRAIN_NODE_LABEL];
      if (node && (m.status?.phase === 'Failed' || m.status?.phase === 'Succeeded')) nodeLoop.queue.add(node);
    },
  });
  // Pods are not otherwise watched: without this a Restore and its Migration only see their
  // target pod Running at their next poll, and that wait is downtime.
  // These informers only wake others: they feed no queue of their own.
  const podInformers = [RESTORE_LABEL, MIGRATION_LABEL].map((label) => {
    const informer = new Informer<V1Pod & Keyed>(
      kc,
      {
        list: () => clients.core.listPodForAllNamespaces({ labelSelector: label }),
        watchPath: '/api/v1/pods',
        watchQuery: { labelSelector: label },
      },
      log,
    );
    const wakeOwners = (pod: V1Pod & Keyed): void => {
      const name = pod.metadata?.labels?.[label];
      if (!name) return;
      const key = `${pod.metadata?.namespace ?? ''}/${name}`;
      // A Migration's Restore has the Migration's name; a Restore's pod names its Restore.
      deps.restoreQueue?.add(key);
      if (label === MIGRATION_LABEL) migLoop.queue.add(key);
      else {
        const owner = deps.restoreInformer.get(key)?.metadata.labels?.[MIGRATION_LABEL];
        if (owner) migLoop.queue.add(`${pod.metadata?.namespace ?? ''}/${owner}`);
      }
    };
    informer.on({ add: wakeOwners, update: (_o, p) => wakeOwners(p) });
    return informer;
  });
  return {
    informers: [migLoop.informer, nodeLoop.informer, ...podInformers],
    workers: [
      {
        queue: migLoop.queue,
        reconciler: new MigrationReconciler({
          migrations,
          checkpoints: deps.checkpoints,
          restores: deps.restores,
          core: clients.core,
          events: deps.events,
          metrics: deps.metrics,
        }),
      },
      {
        queue: nodeLoop.queue,
        reconciler: new DrainReconciler({
          core: clients.core,
          migrations,
          events: deps.events,
          maxConcurrent: deps.maxConcurrentDrain,
          retry: deps.drainRetry,
        }),
      },
    ],
  };
}
