/**
 * The operator on the local control plane: the controller and one agent per
 * local node, in this process, with the real engine. Pass it as
 * startControlPlane({ startOperator: startLocalOperator }). The process
 * kubelet ignores images and volumes, so restored pods run the launcher from
 * this checkout (native/build/fdckpt-hold) instead of an injected copy. The
 * controller serves the pod webhook on loopback and registers it by URL, and
 * serves only the API server (its webhook client certificate).
 */
import { fileURLToPath } from 'node:url';
import { EngineAdapter } from '../agent/daemon/engine-adapter.js';
import { startAgent } from '../agent/daemon/daemon.js';
import type { Component, ControlPlaneInfo } from '../local/controlplane.js';
import type { LocalCluster } from '../local/cluster/cluster.js';
import { OPERATOR_NAMESPACE, installOperator } from '../local/cluster/install.js';
import { WEBHOOK_CLIENT_CN } from '../local/cluster/pki.js';
import { loadKubeConfig } from '../kube/client.js';
import { startController } from '../controller/manager.js';
import { jsonLogger, resolveLogLevel, type Logger } from '../kube/log.js';
import type { PodWebhookOptions } from '../controller/webhook/index.js';

/** Default launcher: $FDCKPT_HOLD, else this checkout's native build. */
function launcherPath(): string {
  return (
    process.env['FDCKPT_HOLD'] ?? fileURLToPath(new URL('../../native/build/fdckpt-hold', import.meta.url))
  );
}

/**
 * The pod webhook as the local operator serves it: on loopback, registered by URL (the
 * controller runs on the host, not behind deploy/webhook.yaml's Service), with
 * deploy/webhook.yaml's names for the Secret and the configuration. Only the API server
 * of `cluster` is served: its CA signs every component's certificate (nodes' too), so the
 * subject must also be the API server's webhook client's.
 */
export function localWebhookOptions(
  cluster: Pick<LocalCluster, 'caCert'>,
  namespace = OPERATOR_NAMESPACE,
): PodWebhookOptions {
  return {
    clientAuth: { ca: cluster.caCert, allowedNames: [WEBHOOK_CLIENT_CN] },
    port: 0,
    host: '127.0.0.1',
    urlHost: '127.0.0.1',
    namespace,
    secretName: 'fdckpt-webhook-tls',
    serviceName: 'fdckpt-webhook',
    configName: 'fdckpt-pods',
  };
}

/** Options of startLocalOperator; the defaults log JSON lines to stderr at FDCKPT_LOG_LEVEL (else info). */
export interface LocalOperatorOptions {
  /** A logger per component (`controller`, `agent NODE`). */
  log?: (component: string) => Logger;
}

export async function startLocalOperator(
  info: ControlPlaneInfo,
  options: LocalOperatorOptions = {},
): Promise<Component> {
  const level = resolveLogLevel(undefined);
  const log = options.log ?? ((component: string): Logger => jsonLogger(component, { level }));
  // Installed as a user installs it; each component then runs as its own ServiceAccount.
  const credentials = await installOperator(info.cluster, info.kubeconfigPath);
  const controller = await startController({
    kc: loadKubeConfig(credentials.controller),
    log: log('controller'),
    port: 0,
    launcher: { image: 'local', hostPath: launcherPath() },
    lease: { namespace: OPERATOR_NAMESPACE, name: 'fdckpt-controller', identity: `local-${process.pid}` },
    migrations: { enabled: true },
    // Owner-managed pods (a Deployment's): their replacements are pinned by the webhook.
    webhook: localWebhookOptions(info.cluster),
  });
  const agents = await Promise.all(
    info.nodes.map(async (node) => {
      // Its own node's tokens: the admission policies and the other agents' transfer
      // servers hold each agent to its node.
      const own = await credentials.agent(node.name);
      return startAgent({
        kc: loadKubeConfig(own.kubeconfig),
        nodeName: node.name,
        dataDir: node.storageDir,
        engine: new EngineAdapter({ dataDir: node.storageDir }),
        log: log(`agent ${node.name}`),
        port: 0,
        // Images move between the local nodes' agents over loopback.
        transfer: { port: 0, host: '127.0.0.1', tokenFile: own.transferTokenFile },
      });
    }),
  );
  return {
    async stop() {
      for (const a of agents) await a.stop();
      await controller.stop();
    },
  };
}
