/**
 * A real node on this machine: kubelet + containerd + runc in a network and mount
 * namespace of their own, so that two nodes can run side by side as on two machines
 * (each with its own address, ports 10250/8081/8082, /var/lib/fdckpt and pod network)
 * while sharing the host's kernel, PID namespace and cgroup hierarchy, which is what
 * fdckpt's agent needs to see (hostPID, /sys/fs/cgroup).
 *
 * The namespaces are held by a `sleep` (the holder); containerd and the kubelet are
 * entered into them with nsenter. Everything the node writes is under its directory,
 * except its cgroups (/fdckpt-node<i> on every hierarchy) and the host end of its veth
 * pair. A node left behind by a killed run (containers keep running under their shims)
 * is cleaned up when a node with the same index starts, and on stop.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import type { CoreV1Api, V1Node } from '@kubernetes/client-node';
import type { Component } from '../cluster/component.js';
import type { LocalCluster } from '../cluster/cluster.js';
import { containerdPaths, importImage, startContainerd, type ContainerdPaths } from './containerd.js';
import { cgroupHierarchies, nodeCgroupRoot, startKubelet } from './kubelet.js';
import { connectNode, disconnectNode, type NodeAddresses } from './network.js';

/** Host paths each node sees its own directory at (bind mounts in its mount namespace). */
const NODE_BINDS = [
  // The agent's hostPath data directory.
  { at: '/var/lib/fdckpt', own: 'fdckpt-data' },
  // The kubelet's fixed symlink directory for container logs.
  { at: '/var/log/containers', own: 'container-logs' },
];

/** Options of {@link startRealNode}. */
export interface RealNodeOptions {
  name: string;
  /** 0..MAX_NODES-1: picks addresses, interface names and the cgroup root. */
  index: number;
  /** The node's directory (kept short: containerd's socket lives in it). */
  dir: string;
  cluster: LocalCluster;
  /** Image archives to import before the kubelet starts (pods use imagePullPolicy Never). */
  images: readonly string[];
  core: CoreV1Api;
  readyTimeoutMs?: number;
  log?: (line: string) => void;
}

/** A running real node. */
export interface RealNode {
  name: string;
  index: number;
  dir: string;
  net: NodeAddresses;
  containerd: ContainerdPaths;
  /** The holder's PID: `nsenter --target PID --mount --net` runs a command on the node. */
  holderPid: number;
  /** The node's host-visible data directory (its /var/lib/fdckpt). */
  dataDir: string;
  kubelet: Component;
  /** Stops the kubelet (its pods keep running, as on a node whose kubelet dies). */
  stopKubelet(): Promise<void>;
  /** Stops everything and removes the node's containers, cgroups and links. */
  stop(): Promise<void>;
}

function startHolder(dir: string): ChildProcess {
  const script = [
    'set -e',
    ...NODE_BINDS.map(
      (b) => `mkdir -p ${b.at} '${join(dir, b.own)}' && mount --bind '${join(dir, b.own)}' ${b.at}`,
    ),
    // A new network namespace does not forward; this node routes for its pods.
    'echo 1 > /proc/sys/net/ipv4/ip_forward',
    `touch '${join(dir, 'holder.ready')}'`,
    'exec sleep infinity',
  ].join('\n');
  if (dir.includes("'")) throw new Error(`${dir}: a node directory may not contain a quote`);
  return spawn(
    'setpriv',
    [
      '--pdeathsig',
      'KILL',
      '--',
      'unshare',
      '--mount',
      '--net',
      '--propagation',
      'slave',
      '--',
      'sh',
      '-c',
      script,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
}

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** PIDs in a cgroup tree of one hierarchy. */
function pidsUnder(dir: string): number[] {
  if (!existsSync(dir)) return [];
  const out: number[] = [];
  const walk = (d: string): void => {
    let procs: string;
    let children: Dirent[];
    try {
      procs = readFileSync(join(d, 'cgroup.procs'), 'utf8');
      children = readdirSync(d, { withFileTypes: true });
    } catch (e) {
      // The kubelet or a dying container removes its cgroup while we walk.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    out.push(...procs.split('\n').filter(Boolean).map(Number));
    for (const e of children) if (e.isDirectory()) walk(join(d, e.name));
  };
  walk(dir);
  return out;
}

function removeTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) removeTree(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    // A process that has not been reaped yet: the next cleanup removes it.
  }
}

/** Shims started by this node's containerd (their command line names its socket). */
function shimsOf(socket: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (argv[0]?.endsWith('containerd-shim-runc-v2') && argv.includes(socket)) out.push(Number(name));
  }
  return out;
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

/**
 * Removes what a node with this index and directory left: its containers' processes (by
 * cgroup), its shims, its cgroups, its host link, and its containerd state (mounts die
 * with the last process in the node's mount namespace).
 */
export async function cleanupNode(index: number, dir: string): Promise<void> {
  const root = nodeCgroupRoot(index);
  const socket = containerdPaths(dir).socket;
  for (let round = 0; round < 50; round++) {
    const pids = [...cgroupHierarchies().flatMap((h) => pidsUnder(join(h, root))), ...shimsOf(socket)];
    if (pids.length === 0) break;
    killAll(pids);
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const h of cgroupHierarchies()) removeTree(join(h, root));
  disconnectNode(index);
}

/** Starts node `index`: holder, network, containerd (images imported), kubelet; resolves when Ready. */
export async function startRealNode(o: RealNodeOptions): Promise<RealNode> {
  const log = (l: string): void => o.log?.(`node ${o.name}: ${l}`);
  await cleanupNode(o.index, o.dir);
  rmSync(join(o.dir, 'holder.ready'), { force: true });
  mkdirSync(o.dir, { recursive: true });
  const holder = startHolder(o.dir);
  let holderErr = '';
  holder.stderr?.setEncoding('utf8').on('data', (c: string) => (holderErr = (holderErr + c).slice(-2000)));
  const parts: Component[] = [];
  const stop = async (): Promise<void> => {
    for (const c of [...parts].reverse()) await c.stop();
    parts.length = 0;
    holder.kill('SIGKILL');
    await cleanupNode(o.index, o.dir);
  };
  try {
    await waitFor('node namespaces', 10_000, () => {
      if (holder.exitCode !== null) throw new Error(`node holder exited: ${holderErr}`);
      return existsSync(join(o.dir, 'holder.ready')) ? true : undefined;
    });
    const pid = holder.pid!;
    const net = connectNode(o.index, pid);
    const enter = ['nsenter', `--target=${pid}`, '--mount', '--net', '--'];
    const paths = containerdPaths(o.dir);
    const containerd = await startContainerd(paths, net, enter);
    parts.push(containerd);
    for (const image of o.images) importImage(paths, image);
    log(`containerd up, ${o.images.length} image(s) imported`);
    const kubelet = startKubelet({
      name: o.name,
      index: o.index,
      dir: o.dir,
      net,
      runtimeSocket: paths.socket,
      cluster: o.cluster,
      enter,
    });
    parts.push(kubelet);
    let exit: string | undefined;
    void kubelet.exited.then((e) => (exit = e));
    await waitFor(`node ${o.name} Ready`, o.readyTimeoutMs ?? 120_000, async () => {
      if (exit) throw new Error(`kubelet ${exit}:\n${kubelet.tail(30)}`);
      const node = await o.core.readNode({ name: o.name }).catch(() => undefined);
      return node && nodeReady(node) ? node : undefined;
    }).catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}\nkubelet log:\n${kubelet.tail(30)}`);
    });
    log(`Ready at ${net.nodeIp}`);
    return {
      name: o.name,
      index: o.index,
      dir: o.dir,
      net,
      containerd: paths,
      holderPid: pid,
      dataDir: join(o.dir, 'fdckpt-data'),
      kubelet,
      async stopKubelet() {
        await kubelet.stop();
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Ready=True and running on containerd (not a process kubelet). */
function nodeReady(n: V1Node): boolean {
  const ready = n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  return ready && (n.status?.nodeInfo?.containerRuntimeVersion ?? '').startsWith('containerd://');
}

/** Runs a command inside node `n` (its mount and network namespaces). */
export function onNode(n: Pick<RealNode, 'holderPid'>, argv: string[]): string {
  return execFileSync('nsenter', [`--target=${n.holderPid}`, '--mount', '--net', '--', ...argv], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}
