/**
 * What an agent runs for migrations, beside its Checkpoint and Restore loops:
 * the image transfer server (advertised on its Node), the image fetcher its
 * Restore reconciler uses for images from other nodes, and the thaw loop.
 * The daemon calls start() once and stop() on the way out.
 */
import { join } from 'node:path';
import { AuthenticationV1Api } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Checkpoint, Restore } from '../../api/index.js';
import { DEFAULT_TRANSFER_TOKEN_FILE } from '../../api/index.js';
import type { EventRecorder } from '../../kube/events.js';
import type { Clients, ResourceClient } from '../../kube/client.js';
import { loopFor, type QueueWorker } from '../../kube/loop.js';
import { Informer } from '../../kube/informer.js';
import type { Logger } from '../../kube/log.js';
import type { PodTarget } from '../daemon/engine.js';
import type { AgentMetrics } from '../daemon/metrics.js';
import type { RetryPolicy } from '../transfer/client.js';
import { transferIdentity } from '../transfer/identity.js';
import { startTransferServer } from '../transfer/server.js';
import type { LocalImage } from './images.js';
import { advertiseEndpoint, imageLookup, localImage } from './images.js';
import { transferAuthorizer } from './transfer-auth.js';
import { AgentThawReconciler } from './thaw.js';
import { thawPodCgroup } from './thaw-cgroup.js';

export interface TransferOptions {
  /** Port of the image transfer server (0 picks one). */
  port: number;
  host?: string;
  /** URL other agents use to reach it; default https://<host or 127.0.0.1>:<port>. */
  advertiseUrl?: string;
  /** Image directory shared by all agents at the same path, if any. */
  sharedDir?: string;
  /**
   * Development only: serve plain HTTP (no certificate, no pin advertised) and
   * fetch from http:// endpoints. Off: https only, and http:// peers are refused.
   */
  insecure?: boolean;
  /** Where the key and certificate are kept (0600); default <dataDir>/tls. */
  tlsDir?: string;
  /** Retries of a cut fetch. */
  retry?: Partial<RetryPolicy>;
  /**
   * This agent's ServiceAccount token for TRANSFER_AUDIENCE, presented to the source
   * node's server (default DEFAULT_TRANSFER_TOKEN_FILE, where deploy/agent.yaml mounts it).
   */
  tokenFile?: string;
}

export interface MigrationSupport {
  transferUrl: string;
  fetchImage: (ckpt: Checkpoint) => Promise<LocalImage>;
  /** The thaw reconciler with its queue, fed by the daemon's Checkpoint informer: the daemon runs it. */
  workers: QueueWorker[];
  stop(): Promise<void>;
}

export interface MigrationSupportDeps {
  kc: KubeConfig;
  clients: Clients;
  checkpoints: ResourceClient<Checkpoint>;
  /** The daemon's informer on this node's Checkpoints (one per agent, shared by its reconcilers). */
  checkpointInformer: Informer<Checkpoint>;
  restores: ResourceClient<Restore>;
  nodeName: string;
  dataDir: string;
  events: EventRecorder;
  log: Logger;
  transfer: TransferOptions;
  metrics?: AgentMetrics;
  /** Default: thaw the pod's cgroup on this node. */
  thaw?: (pod: PodTarget) => Promise<void>;
}

export async function startMigrationSupport(deps: MigrationSupportDeps): Promise<MigrationSupport> {
  const { clients, nodeName, log } = deps;
  const imageDeps = {
    nodeName,
    dataDir: deps.dataDir,
    core: clients.core,
    checkpoints: deps.checkpoints,
    sharedDir: deps.transfer.sharedDir,
    retry: deps.transfer.retry,
    allowInsecure: deps.transfer.insecure,
    tokenFile: deps.transfer.tokenFile ?? DEFAULT_TRANSFER_TOKEN_FILE,
    metrics: deps.metrics,
    log: (m: string) => log.info(m),
  };
  const scheme = deps.transfer.insecure ? 'http:' : 'https:';
  if (deps.transfer.advertiseUrl && new URL(deps.transfer.advertiseUrl).protocol !== scheme) {
    throw new Error(
      `--transfer-url ${deps.transfer.advertiseUrl}: the transfer server speaks ${scheme.slice(0, -1)}` +
        (deps.transfer.insecure ? '' : ' (plain http only with --transfer-insecure)'),
    );
  }
  const identity = deps.transfer.insecure
    ? undefined
    : await transferIdentity(`fdckpt-agent ${nodeName}`, deps.transfer.tlsDir ?? join(deps.dataDir, 'tls'));
  const server = await startTransferServer({
    port: deps.transfer.port,
    host: deps.transfer.host,
    root: deps.dataDir,
    authorize: transferAuthorizer({
      authn: deps.kc.makeApiClient(AuthenticationV1Api),
      restores: deps.restores,
      nodeName,
    }),
    lookup: imageLookup(imageDeps),
    onError: (m) => log.error(m),
    ...(identity ? { tls: identity } : {}),
  });
  const url = deps.transfer.advertiseUrl ?? server.url;
  // null removes a pin left by an earlier TLS run of this agent.
  await advertiseEndpoint(clients.core, nodeName, url, identity?.sha256 ?? null);
  const thawQueue = loopFor(deps.checkpointInformer).queue;
  const reconciler = new AgentThawReconciler(deps.checkpoints, {
    nodeName,
    core: clients.core,
    events: deps.events,
    thaw: deps.thaw ?? thawPodCgroup,
  });
  log.info(
    `image transfer on ${url} (advertised on node ${nodeName}` +
      (identity ? `, certificate sha256 ${identity.sha256})` : ', plain http: development only)'),
  );
  return {
    transferUrl: url,
    fetchImage: (ckpt) => localImage(imageDeps, ckpt),
    workers: [{ queue: thawQueue, reconciler }],
    async stop() {
      await server.close();
    },
  };
}
