/**
 * The network of real nodes on one machine. Each node lives in its own network namespace
 * (so that two nodes' agents, kubelets and pods can use the same ports, as on two
 * machines), joined to the host by a veth pair:
 *
 *   host  fdckpt-h<i> 10.200.<i>.1/24  <-veth->  fdckpt-n<i> 10.200.<i>.2/24  node i
 *   node i: default via 10.200.<i>.1; its pods on bridge fdcni<i>, 10.244.<i>.0/24
 *   host: 10.244.<i>.0/24 via 10.200.<i>.2 (so pods of different nodes reach each other)
 *
 * The API server listens on the host at 10.0.0.1:443, the kubernetes Service's ClusterIP:
 * there is no kube-proxy, so an in-cluster client that dials the Service must find the
 * API server at that address itself. Everything here shells out to iproute2, as any node
 * setup script would.
 */
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The kubernetes Service's ClusterIP (first address of --service-cluster-ip-range). */
export const SERVICE_ADDRESS = '10.0.0.1';

/** Node indexes are small: they name interfaces and pick /24s. */
export const MAX_NODES = 8;

/** The addresses of node `index`. */
export interface NodeAddresses {
  /** The host's end of the veth pair. */
  hostIp: string;
  /** The node's own address: its kubelet, and hostNetwork pods. */
  nodeIp: string;
  /** The node's pod range (the bridge CNI's subnet). */
  podCidr: string;
  hostLink: string;
  nodeLink: string;
  /** The bridge its pods are attached to. */
  bridge: string;
}

export function nodeAddresses(index: number): NodeAddresses {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_NODES)
    throw new Error(`node index ${index}: must be an integer in 0..${MAX_NODES - 1}`);
  return {
    hostIp: `10.200.${index}.1`,
    nodeIp: `10.200.${index}.2`,
    podCidr: `10.244.${index}.0/24`,
    hostLink: `fdckpt-h${index}`,
    nodeLink: `fdckpt-n${index}`,
    bridge: `fdcni${index}`,
  };
}

function ip(args: string[], enter?: number): string {
  const argv =
    enter === undefined ? ['ip', ...args] : ['nsenter', `--net=/proc/${enter}/ns/net`, 'ip', ...args];
  try {
    return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr?.trim();
    throw new Error(`${argv.join(' ')}: ${stderr || String(e)}`);
  }
}

/** Where {@link holdServiceAddress} takes its lock (a file every process on the machine sees). */
export const SERVICE_ADDRESS_LOCK = join(tmpdir(), 'fdckpt-service-address.lock');

/**
 * Takes the machine's one service-address cluster (10.0.0.1:443 and node indexes 0-7)
 * for this process, waiting up to `timeoutMs` while another process holds it (two test
 * suites with real nodes, run by two jest workers, wait for each other instead of
 * failing on the port). An flock(1) child holds the kernel lock; it ends, and the lock
 * goes, when `release` closes its stdin or when this process dies, however it dies.
 */
export function holdServiceAddress(timeoutMs: number, lock = SERVICE_ADDRESS_LOCK): Promise<() => void> {
  const seconds = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
  const holder = spawn('flock', ['-x', '-w', seconds, lock, 'sh', '-c', 'echo held; exec cat'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    holder.on('error', (e) => reject(new Error(`flock (util-linux) for ${lock}: ${e.message}`)));
    holder.stdout.on('data', (b: Buffer) => {
      out += String(b);
      if (out.startsWith('held\n')) resolve(() => holder.stdin.end());
    });
    holder.on('exit', (code) => {
      if (!out.startsWith('held\n'))
        reject(
          new Error(
            `another cluster on ${SERVICE_ADDRESS} held ${lock} for ${seconds} s (flock exit ${code})`,
          ),
        );
    });
  });
}

/** Puts 10.0.0.1/32 on the host's loopback unless it is there already. */
export function ensureServiceAddress(): void {
  const shown = ip(['-4', '-o', 'addr', 'show', 'dev', 'lo']);
  if (new RegExp(`inet ${SERVICE_ADDRESS.replace(/\./g, '\\.')}/`).test(shown)) return;
  ip(['addr', 'add', `${SERVICE_ADDRESS}/32`, 'dev', 'lo']);
}

/** Lets the host route between nodes (pod to pod, pod to API server and back). */
function enableForwarding(): void {
  writeFileSync('/proc/sys/net/ipv4/ip_forward', '1\n');
}

/**
 * Wires node `index`, whose network namespace is that of process `holder`, to the host;
 * removes what an earlier run left under the same names first.
 */
export function connectNode(index: number, holder: number): NodeAddresses {
  const a = nodeAddresses(index);
  disconnectNode(index);
  enableForwarding();
  ip(['link', 'add', a.hostLink, 'type', 'veth', 'peer', 'name', a.nodeLink]);
  ip(['link', 'set', a.nodeLink, 'netns', String(holder)]);
  ip(['addr', 'add', `${a.hostIp}/24`, 'dev', a.hostLink]);
  ip(['link', 'set', a.hostLink, 'up']);
  ip(['addr', 'add', `${a.nodeIp}/24`, 'dev', a.nodeLink], holder);
  ip(['link', 'set', a.nodeLink, 'up'], holder);
  ip(['link', 'set', 'lo', 'up'], holder);
  ip(['route', 'add', 'default', 'via', a.hostIp], holder);
  ip(['route', 'replace', a.podCidr, 'via', a.nodeIp]);
  return a;
}

/** Removes node `index`'s host side (the veth pair and the pod route); absent is fine. */
export function disconnectNode(index: number): void {
  const a = nodeAddresses(index);
  for (const args of [
    ['route', 'del', a.podCidr],
    ['link', 'del', a.hostLink],
  ]) {
    try {
      ip(args);
    } catch {
      // Not there: nothing to remove.
    }
  }
}
