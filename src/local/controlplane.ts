/**
 * The local control plane, in one process: the API double, a minimal scheduler, the
 * Deployment/ReplicaSet/garbage-collector controllers and N process kubelets (local
 * nodes with distinct names and storage directories), plus a kubeconfig for them. A
 * development harness: production is a real cluster.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { startApiServer, type ApiServer } from './apiserver/server.js';
import { writeKubeconfig } from './kubeconfig.js';
import { ProcessKubelet } from './kubelet/kubelet.js';
import { startLocalControllers } from './controllers/index.js';
import { startScheduler, type LocalScheduler } from './scheduler.js';

/** Something started on top of the control plane (the controller, the agents). */
export interface Component {
  stop(): Promise<void>;
}

/** What the operator components are given to start against. */
export interface ControlPlaneInfo {
  kubeconfigPath: string;
  url: string;
  dataDir: string;
  /** Local nodes: name and storage directory. */
  nodes: { name: string; storageDir: string }[];
}

/** Options of {@link startControlPlane}. */
export interface ControlPlaneOptions {
  /** Local nodes to run (default 1; 0 runs the API server alone). */
  nodes?: number;
  /** When true, do not start the operator components, only the API, scheduler and nodes. */
  apiOnly?: boolean;
  /** Where kubeconfig and node storage go (default: a new temporary directory). */
  dataDir?: string;
  /** Where to write the kubeconfig (default <dataDir>/kubeconfig). */
  kubeconfigPath?: string;
  /** API server port on 127.0.0.1 (default: any free one). */
  port?: number;
  /** Serve HTTPS with a self-signed certificate (needs openssl); default plain HTTP. */
  tls?: boolean;
  /** Root of the pod cgroup tree (default FDCKPT_CGROUP_ROOT, else the cgroup v2 mount). */
  cgroupRoot?: string;
  /** Run the Deployment, ReplicaSet and garbage-collector controllers (default true; needs nodes > 0). */
  controllers?: boolean;
  /** Starts the operator (controller, agents) once the nodes are up; skipped with apiOnly. */
  startOperator?: (info: ControlPlaneInfo) => Promise<Component>;
  log?: (line: string) => void;
}

/** A running control plane. */
export interface ControlPlane extends ControlPlaneInfo {
  api: ApiServer;
  kubelets: ProcessKubelet[];
  stop(): Promise<void>;
}

/** Name of the i-th local node (1-based). */
export function localNodeName(i: number): string {
  return `local-node-${i}`;
}

/** Starts the API double, the scheduler, the kubelets and, unless apiOnly, the operator. */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  // A data dir of our own making goes with the control plane; one the caller named stays.
  const ownDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'fdckpt-local-'));
  mkdirSync(dataDir, { recursive: true });
  const kubeconfigPath = opts.kubeconfigPath ?? join(dataDir, 'kubeconfig');
  const api = await startApiServer({
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    ...(opts.tls ? { tls: true } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  const started: Component[] = [];
  const kubelets: ProcessKubelet[] = [];
  const stop = async (): Promise<void> => {
    for (const c of started.reverse()) await c.stop().catch(() => undefined);
    await api.close();
    if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    writeKubeconfig(kubeconfigPath, api.url, api.caCert);
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const count = opts.nodes ?? 1;
    const nodes = Array.from({ length: count }, (_, i) => ({
      name: localNodeName(i + 1),
      storageDir: join(dataDir, 'nodes', localNodeName(i + 1)),
    }));
    for (const [i, n] of nodes.entries()) {
      const k = new ProcessKubelet({
        nodeName: n.name,
        kubeConfig: kc,
        storageDir: n.storageDir,
        nodeIndex: i + 1,
        ...(opts.cgroupRoot ? { cgroupRoot: opts.cgroupRoot } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      });
      await k.start();
      kubelets.push(k);
      started.push(k);
    }
    if (count > 0) {
      const s: LocalScheduler = await startScheduler(
        kc,
        nodes.map((n) => n.name),
        opts.log,
      );
      started.push(s);
      if (opts.controllers !== false) started.push(await startLocalControllers(kc, opts.log));
    }
    const info: ControlPlaneInfo = { kubeconfigPath, url: api.url, dataDir, nodes };
    if (!opts.apiOnly && opts.startOperator) started.push(await opts.startOperator(info));
    return { ...info, api, kubelets, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
