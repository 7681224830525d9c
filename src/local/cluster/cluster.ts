/**
 * A real Kubernetes control plane on this machine, started the way envtest starts one:
 * etcd and kube-apiserver (own CA, serving certificates, ServiceAccount signing key,
 * Node and RBAC authorization, NodeRestriction, privileged pods allowed), and, for a
 * cluster that runs pods, kube-controller-manager (Deployments, ReplicaSets, garbage
 * collection, ServiceAccounts, node lifecycle) and kube-scheduler. Every component
 * authenticates with its own client certificate; nodes (process kubelets, real kubelets)
 * get `system:node:<name>` certificates, and the API server presents its own
 * (CN kube-apiserver-webhook-client) to admission webhooks. The binaries come from
 * scripts/kube/build.sh.
 */
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PemCert } from '../../tls/x509.js';
import { credentialKubeconfigYaml } from '../kubeconfig.js';
import { kubeBinary } from './binaries.js';
import { get, startComponent, startOnFreePorts, waitReady, type Component } from './component.js';
import { ClusterPki } from './pki.js';
import { ensureServiceAddress, holdServiceAddress, SERVICE_ADDRESS } from '../node/network.js';

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Holds etcd's data, the PKI, kubeconfigs and component logs; the caller owns it. */
  dataDir: string;
  /** Run kube-controller-manager (default true). */
  controllerManager?: boolean;
  /** Run kube-scheduler (default true). */
  scheduler?: boolean;
  /**
   * The API server's watch cache (default on). Off, watches are served from etcd, so an
   * etcd compaction ({@link LocalCluster.compact}) makes older resourceVersions 410 Gone.
   */
  watchCache?: boolean;
  /**
   * Serve the API at the kubernetes Service's own address, https://10.0.0.1:443, instead
   * of a free port on loopback: real nodes (src/local/node) live in their own network
   * namespaces and have no kube-proxy, so a pod's in-cluster client, which dials the
   * Service's ClusterIP, must find the API server there. Only one such cluster runs on a
   * machine at a time: a second one waits (up to 10 minutes) for the first to stop.
   * Webhook calls then go to a Service's endpoints, not its ClusterIP.
   */
  serviceAddress?: boolean;
  /** Seconds a node may go without a heartbeat before it is marked NotReady (default 40). */
  nodeMonitorGraceSeconds?: number;
  log?: (line: string) => void;
}

/** A running local cluster. */
export interface LocalCluster {
  /** The API server, https://127.0.0.1:PORT (https://10.0.0.1 with `serviceAddress`). */
  url: string;
  /**
   * The cluster CA (PEM): it signed the API server's and every component's certificate,
   * among them the one the API server presents to webhooks (CN WEBHOOK_CLIENT_CN).
   */
  caCert: string;
  /** A cluster-admin kubeconfig (group system:masters). */
  adminKubeconfig: string;
  pki: ClusterPki;
  dataDir: string;
  /** A kubeconfig for node `name` (user system:node:NAME, group system:nodes). */
  nodeKubeconfig(name: string): string;
  /**
   * A serving certificate for node `name`'s kubelet on 127.0.0.1 and the given addresses,
   * trusted by the API server.
   */
  kubeletServing(name: string, addresses?: readonly string[]): PemCert;
  /**
   * A kubeconfig (written to `path`) authenticating as ServiceAccount namespace/name with
   * a token from the TokenRequest API; the ServiceAccount must exist.
   */
  serviceAccountKubeconfig(namespace: string, name: string, path: string): Promise<string>;
  /** A kubeconfig (written to `path`) authenticating as `user` with a bearer token. */
  tokenKubeconfig(user: string, token: string, namespace: string, path: string): string;
  /** Stops and starts kube-apiserver again (every watch ends; etcd keeps the state). */
  restartApiServer(): Promise<void>;
  /** Compacts etcd at its current revision (older resourceVersions become 410 Gone). */
  compact(): Promise<void>;
  /** Stops every component, newest first. */
  stop(): Promise<void>;
}

const READY_MS = 90_000;
/** How long a service-address cluster waits for another one on the machine to stop. */
const SERVICE_ADDRESS_WAIT_MS = 10 * 60_000;

/** Starts etcd, kube-apiserver and (by default) kube-controller-manager and kube-scheduler. */
export async function startCluster(opts: ClusterOptions): Promise<LocalCluster> {
  const dir = opts.dataDir;
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const pki = new ClusterPki(join(dir, 'pki'));
  const admin = pki.client('admin', { cn: 'fdckpt-admin', o: ['system:masters'] });
  const adminKubeconfig = join(dir, 'admin.kubeconfig');
  const probeAt = (base: string, path: string): { url: string; ca: string; cert: string; key: string } => ({
    url: `${base}${path}`,
    ca: pki.ca.cert,
    cert: admin.cert,
    key: admin.key,
  });
  const running: Component[] = [];
  let releaseServiceAddress: (() => void) | undefined;
  const stop = async (): Promise<void> => {
    for (const c of [...running].reverse()) await c.stop();
    running.length = 0;
    releaseServiceAddress?.();
    releaseServiceAddress = undefined;
  };
  const log = (l: string): void => opts.log?.(`cluster: ${l}`);
  // Each attempt logs to its own file, so that a retry's error shows only its own lines.
  const logFile = (name: string, attempt: number): string =>
    join(logs, attempt === 1 ? `${name}.log` : `${name}.${attempt}.log`);

  try {
    const { component: etcd, etcdUrl } = await startOnFreePorts(
      2,
      ([etcdPort, peerPort], attempt) => {
        const component = startComponent(
          'etcd',
          kubeBinary('etcd'),
          etcdArgs(dir, etcdPort!, peerPort!),
          logFile('etcd', attempt),
        );
        const etcdUrl = `http://127.0.0.1:${etcdPort}`;
        return { component, probe: { url: `${etcdUrl}/health` }, result: { etcdUrl } };
      },
      READY_MS,
    );
    running.push(etcd);
    log(`etcd on ${etcdUrl}`);

    if (opts.serviceAddress) {
      releaseServiceAddress = await holdServiceAddress(SERVICE_ADDRESS_WAIT_MS);
      ensureServiceAddress();
    }
    const started = await startOnFreePorts(
      opts.serviceAddress ? 0 : 1,
      ([freeApiPort], attempt) => {
        const at = opts.serviceAddress
          ? { host: SERVICE_ADDRESS, port: 443 }
          : { host: '127.0.0.1', port: freeApiPort! };
        const url = `https://${at.host}:${at.port}`;
        const apiArgs = apiServerArgs(pki, etcdUrl, at, opts.watchCache ?? true);
        const component = startComponent(
          'kube-apiserver',
          kubeBinary('kube-apiserver'),
          apiArgs,
          logFile('kube-apiserver', attempt),
        );
        return { component, probe: probeAt(url, '/readyz'), result: { url, apiArgs } };
      },
      READY_MS,
    );
    const { url, apiArgs } = started;
    const adminProbe = (path: string): ReturnType<typeof probeAt> => probeAt(url, path);
    let apiserver = started.component;
    running.push(apiserver);
    writeFileSync(adminKubeconfig, credentialKubeconfigYaml(url, pki.ca.cert, 'fdckpt-admin', admin), {
      mode: 0o600,
    });
    log(`kube-apiserver on ${url}`);

    if (opts.controllerManager ?? true) {
      const kubeconfig = pki.clientKubeconfig(
        join(dir, 'controller-manager.kubeconfig'),
        url,
        'controller-manager',
        'system:kube-controller-manager',
      );
      const cm = startComponent(
        'kube-controller-manager',
        kubeBinary('kube-controller-manager'),
        controllerManagerArgs(pki, kubeconfig, opts.nodeMonitorGraceSeconds ?? 40),
        join(logs, 'kube-controller-manager.log'),
      );
      running.push(cm);
      // Ready once its ServiceAccount controller has made the default namespace's account:
      // pods cannot be admitted before that.
      await waitReady(cm, adminProbe('/api/v1/namespaces/default/serviceaccounts/default'), READY_MS);
    }
    if (opts.scheduler ?? true) {
      const kubeconfig = pki.clientKubeconfig(
        join(dir, 'scheduler.kubeconfig'),
        url,
        'scheduler',
        'system:kube-scheduler',
      );
      running.push(
        startComponent(
          'kube-scheduler',
          kubeBinary('kube-scheduler'),
          ['--kubeconfig', kubeconfig, '--leader-elect=false', '--secure-port=0'],
          join(logs, 'kube-scheduler.log'),
        ),
      );
    }

    const cluster: LocalCluster = {
      url,
      caCert: pki.ca.cert,
      adminKubeconfig,
      pki,
      dataDir: dir,
      nodeKubeconfig: (name) =>
        pki.clientKubeconfig(join(dir, `node-${name}.kubeconfig`), url, `node-${name}`, {
          cn: `system:node:${name}`,
          o: ['system:nodes'],
        }),
      kubeletServing: (name, addresses) => pki.kubeletServing(name, addresses),
      async serviceAccountKubeconfig(namespace, name, path) {
        const kc = new KubeConfig();
        kc.loadFromFile(adminKubeconfig);
        const tr = await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
          name,
          namespace,
          body: { spec: { audiences: [], expirationSeconds: 24 * 3600 } },
        });
        const token = tr.status?.token;
        if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
        return cluster.tokenKubeconfig(`${namespace}:${name}`, token, namespace, path);
      },
      tokenKubeconfig(user, token, namespace, path) {
        writeFileSync(path, credentialKubeconfigYaml(url, pki.ca.cert, user, { token }, namespace), {
          mode: 0o600,
        });
        return path;
      },
      async restartApiServer() {
        await apiserver.stop();
        const next = startComponent(
          'kube-apiserver',
          kubeBinary('kube-apiserver'),
          apiArgs,
          apiserver.logFile,
        );
        running[running.indexOf(apiserver)] = next;
        apiserver = next;
        await waitReady(apiserver, adminProbe('/readyz'), READY_MS);
      },
      async compact() {
        const head = await etcdPost(etcdUrl, '/v3/kv/range', { key: Buffer.from('\0').toString('base64') });
        const revision = (head as { header?: { revision?: string } }).header?.revision;
        if (!revision) throw new Error(`etcd gave no revision: ${JSON.stringify(head)}`);
        await etcdPost(etcdUrl, '/v3/kv/compaction', { revision, physical: true });
      },
      stop,
    };
    return cluster;
  } catch (e) {
    await stop();
    throw e;
  }
}

function etcdArgs(dir: string, port: number, peer: number): string[] {
  const peerUrl = `http://127.0.0.1:${peer}`;
  return [
    '--name=fdckpt',
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=http://127.0.0.1:${port}`,
    `--advertise-client-urls=http://127.0.0.1:${port}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=fdckpt=${peerUrl}`,
    // A throwaway test store: durability costs fsyncs and buys nothing here.
    '--unsafe-no-fsync',
    '--log-level=warn',
  ];
}

function apiServerArgs(
  pki: ClusterPki,
  etcdUrl: string,
  at: { host: string; port: number },
  watchCache: boolean,
): string[] {
  const serving = pki.apiServerServing();
  const kubeletClient = pki.client('apiserver-kubelet-client', {
    cn: 'kube-apiserver-kubelet-client',
    o: ['system:masters'],
  });
  return [
    `--etcd-servers=${etcdUrl}`,
    `--bind-address=${at.host}`,
    `--advertise-address=${at.host}`,
    `--secure-port=${at.port}`,
    `--tls-cert-file=${serving.cert}`,
    `--tls-private-key-file=${serving.key}`,
    `--client-ca-file=${pki.caFile}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${pki.serviceAccountKey.cert}`,
    `--service-account-signing-key-file=${pki.serviceAccountKey.key}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction',
    '--allow-privileged=true',
    `--kubelet-client-certificate=${kubeletClient.certFile}`,
    `--kubelet-client-key=${kubeletClient.keyFile}`,
    `--kubelet-certificate-authority=${pki.caFile}`,
    // Its client certificate for webhooks: the pod webhook serves only the API server.
    `--admission-control-config-file=${pki.webhookAdmissionConfig()}`,
    '--kubelet-preferred-address-types=InternalIP',
    // No kube-proxy and no pod network: the kubernetes Service needs no endpoints, and a
    // loopback endpoint would not pass validation anyway.
    '--endpoint-reconciler-type=none',
    `--watch-cache=${watchCache}`,
    // Without kube-proxy a Service's ClusterIP leads nowhere: admission webhooks are called
    // at their Service's endpoints (a pod's address on a real node).
    ...(at.host === SERVICE_ADDRESS ? ['--enable-aggregator-routing=true'] : []),
    '--profiling=false',
  ];
}

function controllerManagerArgs(pki: ClusterPki, kubeconfig: string, graceSeconds: number): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    '--leader-elect=false',
    '--secure-port=0',
    `--service-account-private-key-file=${pki.serviceAccountKey.key}`,
    `--root-ca-file=${pki.caFile}`,
    '--use-service-account-credentials=true',
    `--node-monitor-grace-period=${graceSeconds}s`,
  ];
}

async function etcdPost(etcdUrl: string, path: string, body: unknown): Promise<unknown> {
  const r = await fetch(`${etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`etcd ${path}: HTTP ${r.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as unknown;
}

/** The admin kubeconfig's client-node KubeConfig. */
export function adminKubeConfig(c: LocalCluster): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(readFileSync(c.adminKubeconfig, 'utf8'));
  return kc;
}

/** Whether the API server answers /readyz now. */
export async function apiReady(c: LocalCluster): Promise<boolean> {
  const r = await get({ url: `${c.url}/readyz`, ca: c.caCert }).catch(() => undefined);
  return r?.status === 200;
}
