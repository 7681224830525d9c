/**
 * Helpers of the real-node suite (realnode.test.ts): its prerequisites, the image, the
 * demo program, and what a container's process looks like from the host (hostPID).
 */
import { describe } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KUBECTL } from '../support/kubectl.js';

export const repo = resolve(import.meta.dirname, '..', '..');
const TOOLS = ['containerd', 'ctr', 'runc', 'unshare', 'nsenter', 'setpriv', 'ip'];
const CNI = ['/usr/lib/cni/bridge', '/usr/lib/cni/host-local', '/usr/lib/cni/loopback'];

function missingPrerequisites(): string[] {
  const missing: string[] = [];
  for (const t of TOOLS) if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) missing.push(t);
  for (const f of CNI) if (!existsSync(f)) missing.push(f);
  if (process.getuid?.() !== 0) missing.push('root');
  if (!existsSync(KUBECTL)) missing.push(`kubectl (${KUBECTL})`);
  return missing;
}

export function suite(): typeof describe | typeof describe.skip {
  const missing = missingPrerequisites();
  if (missing.length === 0) return describe;
  const message = `test prerequisite missing: ${missing.join(', ')} (scripts/node/ensure-node.sh installs containerd, runc and the CNI plugins; scripts/kube/build.sh the kubelet)`;
  if (process.env['CI'] === 'true') throw new Error(message);
  process.stderr.write(`real nodes: SKIPPED, ${message}\n`);
  return describe.skip;
}

/** scripts/image/build.sh (cached per machine): the directory of fdckpt.tar and pause.tar. */
export function images(): string {
  const r = spawnSync('bash', [join(repo, 'scripts', 'image', 'build.sh')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scripts/image/build.sh failed (${r.status}):\n${r.stderr}`);
  return r.stdout.trim().split('\n').pop()!;
}

/**
 * The demo program: five files on /etc/hostname at offset 3 without close-on-exec (what
 * a restore replays into a fresh program by default; Node opens everything close-on-exec,
 * so koffi clears the flag), then a line a second on stdout.
 */
const DEMO = [
  "import fs from 'node:fs'; import koffi from 'koffi';",
  "const fcntl = koffi.load('libc.so.6').func('int fcntl(int, int, int)');",
  "for (let i = 0; i < 5; i++) { const fd = fs.openSync('/etc/hostname', 'r'); fs.readSync(fd, Buffer.alloc(3), 0, 3, null); fcntl(fd, 2, 0); }",
  "console.log('demo up', process.pid); setInterval(() => console.log('tick'), 1000);",
].join(' ');

export function demoPod(name: string, node: string): V1Pod {
  return {
    metadata: { name, namespace: 'default' },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'demo',
          image: 'localhost/fdckpt:dev',
          imagePullPolicy: 'Never',
          workingDir: '/opt/fdckpt',
          command: ['node', '--input-type=module', '-e', DEMO],
        },
      ],
    },
  };
}

/** The fds of a host process that survive exec, as `fd -> target@offset`. */
export function inheritable(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    if (Number(fd) < 3) continue;
    let info: string;
    let target: string;
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const flags = parseInt(/^flags:\s+([0-7]+)/m.exec(info)![1]!, 8);
    if (flags & 0o2000000) continue; // O_CLOEXEC
    out[fd] = `${target}@${/^pos:\s+(\d+)/m.exec(info)![1]}`;
  }
  return out;
}

/** What fds 0-2 of a host process are (pipes to its container's shim). */
export function stdioOf(pid: number): string[] {
  return [0, 1, 2].map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`));
}

/** The host PID of the program in pod `uid`'s container `cid` (hostPID view). */
export function programPid(uid: string, containerId: string): number {
  const cid = containerId.replace('containerd://', '');
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cg = readFileSync(`/proc/${name}/cgroup`, 'utf8');
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (cg.includes(`pod${uid}/${cid}`) && /(^|\/)node$/.test(argv[0]!)) return Number(name);
    } catch {
      // gone
    }
  }
  throw new Error(`no node process in container ${cid} of pod ${uid}`);
}
