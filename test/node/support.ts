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

/**
 * The host PID of the program of pod `uid`'s container `cid` (hostPID view): the
 * container's first process, the one whose parent (the containerd shim) is outside it;
 * in a restored container that is the launcher's waiter (fdckpt-hold), and the program
 * is its child, exec'd by the held process.
 */
export function programPid(uid: string, containerId: string): number {
  const cid = containerId.replace('containerd://', '');
  const inside = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!readFileSync(`/proc/${name}/cgroup`, 'utf8').includes(`pod${uid}/${cid}`)) continue;
      inside.set(Number(name), parentOf(Number(name)));
    } catch {
      // gone
    }
  }
  const first = [...inside].filter(([, ppid]) => !inside.has(ppid)).map(([pid]) => pid);
  if (first.length !== 1)
    throw new Error(`container ${cid} of pod ${uid}: first processes ${JSON.stringify(first)}`);
  const top = first[0]!;
  if (readFileSync(`/proc/${top}/comm`, 'utf8').trim() !== 'fdckpt-hold') return top;
  const held = [...inside].filter(([, ppid]) => ppid === top).map(([pid]) => pid);
  if (held.length !== 1)
    throw new Error(`launcher ${top} of container ${cid}: children ${JSON.stringify(held)}`);
  return held[0]!;
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // comm may hold spaces and parentheses: the fields start after its last ')'.
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** The inodes of the listening TCP and unix sockets in process `pid`'s network namespace. */
export function listeningSockets(pid: number): Set<string> {
  const out = new Set<string>();
  const rows = (file: string): string[][] => {
    try {
      return readFileSync(`/proc/${pid}/net/${file}`, 'utf8')
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.trim().split(/\s+/));
    } catch {
      return [];
    }
  };
  // tcp: st 0A is LISTEN; the inode is the tenth column.
  for (const f of ['tcp', 'tcp6']) for (const r of rows(f)) if (r[3] === '0A') out.add(r[9]!);
  // unix: Flags 00010000 is __SO_ACCEPTCON (listening); the inode is the seventh column.
  for (const r of rows('unix')) if (r[3] === '00010000') out.add(r[6]!);
  return out;
}
