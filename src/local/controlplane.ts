/**
 * The local control plane: a real Kubernetes control plane (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler; src/local/cluster) and N process kubelets
 * (local nodes with distinct names and storage directories) registered through it with
 * their own node credentials, plus a cluster-admin kubeconfig. A development and test
 * harness: production is a user's cluster.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { startCluster, type LocalCluster } from './cluster/cluster.js';
import { ProcessKubelet } from './kubelet/kubelet.js';

/** Something started on top of the control plane (the controller, the agents). */
export interface Component {
  stop(): Promise<void>;
}

/** What the operator components are given to start against. */
export interface ControlPlaneInfo {
  /** A cluster-admin kubeconfig: for the user (kubectl) and for installing, never for the operator. */
  kubeconfigPath: string;
  url: string;
  dataDir: string;
  /** Local nodes: name and storage directory. */
  nodes: { name: string; storageDir: string }[];
  /** The cluster: the operator's components get their ServiceAccount credentials from it. */
  cluster: LocalCluster;
}

/** Options of {@link startControlPlane}. */
export interface ControlPlaneOptions {
  /** Local nodes to run (default 1; 0 runs the control plane alone). */
  nodes?: number;
  /** When true, do not start the operator components, only the control plane and nodes. */
  apiOnly?: boolean;
  /** Where kubeconfig, cluster state and node storage go (default: a new temporary directory). */
  dataDir?: string;
  /** Where to write the admin kubeconfig (default <dataDir>/kubeconfig). */
  kubeconfigPath?: string;
  /** Root of the pod cgroup tree (default FDCKPT_CGROUP_ROOT, else the cgroup v2 mount). */
  cgroupRoot?: string;
  /** The API server's watch cache (default on); see ClusterOptions.watchCache. */
  watchCache?: boolean;
  /** Starts the operator (controller, agents) once the nodes are up; skipped with apiOnly. */
  startOperator?: (info: ControlPlaneInfo) => Promise<Component>;
  log?: (line: string) => void;
}

/** A running control plane. */
export interface ControlPlane extends ControlPlaneInfo {
  kubelets: ProcessKubelet[];
  stop(): Promise<void>;
}

/** Name of the i-th local node (1-based). */
export function localNodeName(i: number): string {
  return `local-node-${i}`;
}

/** Starts the cluster, the process kubelets and, unless apiOnly, the operator. */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  // A data dir of our own making goes with the control plane; one the caller named stays.
  const ownDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'fdckpt-local-'));
  mkdirSync(dataDir, { recursive: true });
  const kubeconfigPath = opts.kubeconfigPath ?? join(dataDir, 'kubeconfig');
  const started: Component[] = [];
  let cluster: LocalCluster | undefined;
  const stop = async (): Promise<void> => {
    for (const c of started.reverse()) await c.stop().catch(() => undefined);
    await cluster?.stop();
    // The cluster's own state (etcd, PKI, logs) never outlives it; the caller's files do.
    rmSync(join(dataDir, 'cluster'), { recursive: true, force: true });
    if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    cluster = await startCluster({
      dataDir: join(dataDir, 'cluster'),
      ...(opts.watchCache !== undefined ? { watchCache: opts.watchCache } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
    copyFileSync(cluster.adminKubeconfig, kubeconfigPath);
    const count = opts.nodes ?? 1;
    const nodes = Array.from({ length: count }, (_, i) => ({
      name: localNodeName(i + 1),
      storageDir: join(dataDir, 'nodes', localNodeName(i + 1)),
    }));
    const kubelets: ProcessKubelet[] = [];
    for (const [i, n] of nodes.entries()) {
      const kc = new KubeConfig();
      kc.loadFromFile(cluster.nodeKubeconfig(n.name));
      const k = new ProcessKubelet({
        nodeName: n.name,
        kubeConfig: kc,
        storageDir: n.storageDir,
        nodeIndex: i + 1,
        api: { tls: cluster.kubeletServing(n.name), clientCa: cluster.caCert },
        ...(opts.cgroupRoot ? { cgroupRoot: opts.cgroupRoot } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      });
      // Stopped with the rest even if its start fails half-way (its API server is up by then).
      started.push(k);
      kubelets.push(k);
      await k.start();
    }
    const info: ControlPlaneInfo = { kubeconfigPath, url: cluster.url, dataDir, nodes, cluster };
    if (!opts.apiOnly && opts.startOperator) started.push(await opts.startOperator(info));
    return { ...info, kubelets, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
