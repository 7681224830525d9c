/**
 * A real node's container runtime: Debian's containerd (1.6, config version 2) with its
 * CRI plugin and runc, every path it writes under the node's own directory, so that two
 * nodes on one machine share nothing but the host's cgroup hierarchy. The settings that
 * differ from a stock install are the ones this machine needs (see docs/real-node.md):
 * `restrict_oom_score_adj` (lowering oom_score_adj is refused here), no AppArmor (the
 * host has none), cgroupfs rather than systemd cgroups, and a bridge CNI network of the
 * node's own.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startComponent, type Component } from '../cluster/component.js';
import type { NodeAddresses } from './network.js';

/** Where a node's containerd keeps everything. */
export interface ContainerdPaths {
  dir: string;
  /** The CRI and containerd API socket (unix path; must stay under 108 bytes). */
  socket: string;
  config: string;
  cniConfDir: string;
  logFile: string;
}

/** The CNI plugins Debian's containernetworking-plugins installs. */
export const CNI_BIN_DIR = '/usr/lib/cni';

/** The image every pod sandbox runs (scripts/image/build.sh builds and names it). */
export const PAUSE_IMAGE = 'localhost/fdckpt-pause:1';

export function containerdPaths(nodeDir: string): ContainerdPaths {
  const dir = join(nodeDir, 'containerd');
  const socket = join(dir, 'c.sock');
  // sun_path is 108 bytes with its NUL; a long temp directory would fail only at bind.
  if (Buffer.byteLength(socket) > 100) throw new Error(`${socket}: too long for a unix socket path`);
  return {
    dir,
    socket,
    config: join(dir, 'config.toml'),
    cniConfDir: join(nodeDir, 'cni', 'net.d'),
    logFile: join(nodeDir, 'containerd.log'),
  };
}

/** TOML basic strings: our paths hold no quotes or backslashes, but say so if one does. */
function q(s: string): string {
  if (/["\\\n]/.test(s)) throw new Error(`${JSON.stringify(s)}: not allowed in a containerd path`);
  return `"${s}"`;
}

/** The node's containerd config (version 2, containerd 1.6). */
export function containerdConfig(p: ContainerdPaths): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return [
    'version = 2',
    `root = ${q(join(p.dir, 'root'))}`,
    `state = ${q(join(p.dir, 'state'))}`,
    '[grpc]',
    `  address = ${q(p.socket)}`,
    '[ttrpc]',
    `  address = ${q(`${p.socket}.ttrpc`)}`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q(join(p.dir, 'opt'))}`,
    `[${cri}]`,
    `  sandbox_image = ${q(PAUSE_IMAGE)}`,
    // The kubelet asks for oom_score_adj -998 for critical pods; this machine refuses to
    // lower it, and containerd then fails the container. Restricted, it clamps to ours.
    '  restrict_oom_score_adj = true',
    '  disable_apparmor = true',
    '  enable_selinux = false',
    `[${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    `[${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `[${cri}.containerd.runtimes.runc.options]`,
    '  SystemdCgroup = false',
    `  Root = ${q(join(p.dir, 'runc'))}`,
    `[${cri}.cni]`,
    `  bin_dir = ${q(CNI_BIN_DIR)}`,
    `  conf_dir = ${q(p.cniConfDir)}`,
    '  max_conf_num = 1',
    '',
  ].join('\n');
}

/**
 * The node's pod network: one bridge with the node's /24 (host-local IPAM, its state
 * under the node directory), the bridge as the pods' gateway, no masquerade (nodes and
 * pods route to each other through the host), plus loopback.
 */
export function cniConflist(net: NodeAddresses, ipamDir: string): string {
  return JSON.stringify(
    {
      cniVersion: '0.4.0',
      name: `fdckpt-${net.bridge}`,
      plugins: [
        {
          type: 'bridge',
          bridge: net.bridge,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            dataDir: ipamDir,
            ranges: [[{ subnet: net.podCidr }]],
            routes: [{ dst: '0.0.0.0/0' }],
          },
        },
        { type: 'loopback' },
      ],
    },
    null,
    2,
  );
}

/** `ctr` against the node's containerd, in namespace k8s.io (the CRI plugin's). */
export function ctr(p: ContainerdPaths, args: string[], timeoutMs = 120_000): string {
  try {
    return execFileSync('ctr', ['--address', p.socket, '--namespace', 'k8s.io', ...args], {
      encoding: 'utf8',
      timeout: timeoutMs,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr?.trim();
    throw new Error(`ctr ${args.join(' ')} (node containerd ${p.socket}): ${stderr || String(e)}`);
  }
}

/**
 * Writes the config and CNI conflist and starts containerd inside the node (`enter`);
 * resolves once its API answers.
 */
export async function startContainerd(
  p: ContainerdPaths,
  net: NodeAddresses,
  enter: readonly string[],
  timeoutMs = 60_000,
): Promise<Component> {
  mkdirSync(p.dir, { recursive: true, mode: 0o711 });
  mkdirSync(p.cniConfDir, { recursive: true });
  writeFileSync(p.config, containerdConfig(p));
  writeFileSync(join(p.cniConfDir, '10-fdckpt.conflist'), cniConflist(net, join(p.dir, 'ipam')));
  const c = startComponent('containerd', '/usr/bin/containerd', ['--config', p.config], p.logFile, enter);
  let exit: string | undefined;
  void c.exited.then((e) => (exit = e));
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (exit) throw new Error(`containerd ${exit} before it was ready:\n${c.tail()}`);
    try {
      ctr(p, ['version'], 5000);
      return c;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline) {
      await c.stop();
      throw new Error(`containerd not ready after ${timeoutMs} ms (${last}); log ${p.logFile}:\n${c.tail()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Imports an OCI/docker archive into the node's CRI namespace. */
export function importImage(p: ContainerdPaths, archive: string): void {
  ctr(p, ['images', 'import', archive], 300_000);
}
