/**
 * A real node's kubelet: the pinned kubelet v1.35.4 (scripts/kube/build.sh) over the
 * node's containerd, registered with the node's own client certificate, serving its API
 * (logs, exec) on the node's address with a certificate the cluster CA signed, and
 * authenticating and authorizing the API server's calls the way a production kubelet
 * does (x509 + webhook). Everything it writes is under the node's directory; its pods'
 * cgroups are under /fdckpt-node<i> on every hierarchy, so that two nodes never share a
 * cgroup and a leftover tree is easy to find.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { parseCgroupHierarchies } from '../../agent/cgroup/mounts.js';
import { kubeBinary } from '../cluster/binaries.js';
import { startComponent, type Component } from '../cluster/component.js';
import type { LocalCluster } from '../cluster/cluster.js';
import type { NodeAddresses } from './network.js';

const CGROUP_FS = '/sys/fs/cgroup';

/** The cgroup root of node `index` (relative to every hierarchy's root). */
export function nodeCgroupRoot(index: number): string {
  return `/fdckpt-node${index}`;
}

/**
 * The hierarchies mounted under /sys/fs/cgroup, from mountinfo: the cgroup v2 mount
 * itself, or on a v1 or hybrid host each v1 controller's mount and the unified one. A
 * directory someone made in the v1 tmpfs is not a hierarchy (a CI run once treated a
 * benchmark's leftover there as one and failed reading its cgroup.procs).
 */
export function cgroupHierarchies(): string[] {
  return parseCgroupHierarchies(readFileSync('/proc/self/mountinfo', 'utf8')).filter(
    (at) => at === CGROUP_FS || at.startsWith(`${CGROUP_FS}/`),
  );
}

/**
 * Creates the node's cgroup root on every hierarchy: the kubelet refuses to start when
 * its --cgroup-root is missing. A v1 cpuset child starts with no CPUs and no memory
 * nodes, and nothing can join it: give it its parent's.
 */
export function ensureNodeCgroups(root: string): void {
  for (const h of cgroupHierarchies()) {
    const dir = join(h, root);
    mkdirSync(dir, { recursive: true });
    for (const knob of ['cpuset.cpus', 'cpuset.mems']) {
      const own = join(dir, knob);
      if (existsSync(own) && readFileSync(own, 'utf8').trim() === '')
        writeFileSync(own, readFileSync(join(h, knob), 'utf8'));
    }
  }
}

/** What {@link startKubelet} needs of the node. */
export interface KubeletSetup {
  name: string;
  index: number;
  /** The node's directory. */
  dir: string;
  net: NodeAddresses;
  /** The node's containerd CRI socket. */
  runtimeSocket: string;
  cluster: LocalCluster;
  /** The command prefix that runs a process inside the node. */
  enter: readonly string[];
}

/** The node's KubeletConfiguration (kubelet.config.k8s.io/v1beta1). */
export function kubeletConfig(s: KubeletSetup, tls: { cert: string; key: string }, caFile: string): object {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // This machine's host is cgroup v1 (hybrid) and runs no systemd for us.
    cgroupDriver: 'cgroupfs',
    failCgroupV1: false,
    cgroupRoot: nodeCgroupRoot(s.index),
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${s.runtimeSocket}`,
    address: s.net.nodeIp,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: caFile },
    },
    authorization: { mode: 'Webhook' },
    tlsCertFile: tls.cert,
    tlsPrivateKeyFile: tls.key,
    podCIDR: s.net.podCidr,
    podLogsDir: join(s.dir, 'pod-logs'),
    clusterDomain: 'cluster.local',
    // A test machine's disk is shared by everything on it: evict only when it is full,
    // and never collect the images that were imported, since none can be pulled back.
    evictionHard: {
      'memory.available': '100Mi',
      'nodefs.available': '1%',
      'nodefs.inodesFree': '1%',
      'imagefs.available': '1%',
    },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    // Status every 4 s, so that tests see pod transitions without waiting 10 s.
    nodeStatusUpdateFrequency: '4s',
    syncFrequency: '10s',
    fileCheckFrequency: '10s',
    shutdownGracePeriod: '0s',
  };
}

/** Writes the kubelet's files and starts it inside the node. */
export function startKubelet(s: KubeletSetup): Component {
  const dir = join(s.dir, 'kubelet');
  mkdirSync(join(s.dir, 'pod-logs'), { recursive: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const serving = s.cluster.kubeletServing(s.name, [s.net.nodeIp]);
  const cert = join(dir, 'serving.crt');
  const key = join(dir, 'serving.key');
  writeFileSync(cert, serving.cert);
  writeFileSync(key, serving.key, { mode: 0o600 });
  const config = join(dir, 'config.yaml');
  writeFileSync(config, dump(kubeletConfig(s, { cert, key }, s.cluster.pki.caFile)));
  ensureNodeCgroups(nodeCgroupRoot(s.index));
  return startComponent(
    'kubelet',
    kubeBinary('kubelet'),
    [
      `--config=${config}`,
      `--kubeconfig=${s.cluster.nodeKubeconfig(s.name)}`,
      `--hostname-override=${s.name}`,
      `--node-ip=${s.net.nodeIp}`,
      `--root-dir=${join(dir, 'root')}`,
      `--cert-dir=${join(dir, 'pki')}`,
      '--v=1',
    ],
    join(s.dir, 'kubelet.log'),
    s.enter,
  );
}
