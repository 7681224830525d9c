/**
 * The controller's pod admission webhook as the manager starts it: the webhook
 * server (webhook/index.ts) with its own Migration cache, since every replica
 * serves it, leader or not, and the leader's informers exist only once it leads.
 */
import { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Checkpoint, Migration } from '../../api/index.js';
import { CHECKPOINT, MIGRATION } from '../../api/index.js';
import type { Clients } from '../../kube/client.js';
import { ResourceClient } from '../../kube/client.js';
import { Informer } from '../../kube/informer.js';
import type { Logger } from '../../kube/log.js';
import type { LauncherOptions } from '../restore-pod.js';
import type { PodWebhookOptions } from './index.js';
import { startPodWebhook } from './index.js';

/** The pod webhook with its own Migration cache: every replica serves it, leader or not. */
export async function startControllerWebhook(deps: {
  kc: KubeConfig;
  clients: Clients;
  log: Logger;
  launcher: LauncherOptions;
  options: PodWebhookOptions;
}): Promise<{ port: number; stop(): Promise<void> }> {
  const { kc, clients, log } = deps;
  const migrations = new ResourceClient<Migration>(clients.custom, MIGRATION);
  const informer = new Informer<Migration>(
    kc,
    { list: () => migrations.listAll(), watchPath: migrations.watchPath },
    log,
  );
  const started = informer.start();
  const serving = startPodWebhook(
    {
      core: clients.core,
      admission: kc.makeApiClient(AdmissionregistrationV1Api),
      checkpoints: new ResourceClient<Checkpoint>(clients.custom, CHECKPOINT),
      migrations: () => informer.list(),
      launcher: deps.launcher,
      log,
    },
    deps.options,
  );
  let server: Awaited<typeof serving>;
  try {
    server = await serving;
  } catch (err) {
    // Nothing of a failed start may keep running (a live informer keeps the process up).
    await informer.stop();
    await started.catch(() => undefined);
    throw err;
  }
  return {
    port: server.port,
    async stop() {
      await informer.stop();
      await started.catch(() => undefined);
      await server.close();
    },
  };
}
