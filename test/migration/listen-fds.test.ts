/**
 * Socket handoff in pods, on the local control plane with two nodes (process kubelets,
 * the real agents and controller): a socket-activation-aware server is migrated with
 * the Migration's spec.listenFds, and the replacement resumes on its saved listener,
 * which it finds at fd 3 with LISTEN_FDS, LISTEN_PID (its own pid) and
 * LISTEN_FDNAMES (the saved fd number) in the environment it was exec'd with
 * (/proc/PID/environ), and binds nothing. A Restore with listenFds into a new pod
 * does the same.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import type { Checkpoint, Restore } from '../../src/api/index.js';
import { findPodCgroup, listTasks } from '../../src/agent/cgroup/index.js';
import type { TwoNodes } from '../support/twonodes.js';
import { fdTable, finished, kubectl, podGone, startTwoNodes, until } from '../support/twonodes.js';

let t: TwoNodes;

beforeAll(async () => {
  t = await startTwoNodes();
}, 60_000);

afterAll(async () => {
  await t?.stop();
});

/**
 * sd_listen_fds by hand: LISTEN_FDS counts only when LISTEN_PID is this process. Started
 * fresh it binds the port (listener at fd 7); handed its socket, it takes fd 3. Each
 * connection is answered with its pid and the LISTEN_* it was given.
 */
const SERVER = `
import os, socket, sys
n = int(os.environ.get('LISTEN_FDS', '0')) if os.environ.get('LISTEN_PID') == str(os.getpid()) else 0
os.closerange(3 + n, 1 << 16)  # the process kubelet's own fds are no part of the pod
if n:
    s = socket.socket(fileno=3)
else:
    s = socket.socket()
    # Both local nodes share this host's network: the copy binds while the frozen source holds the port.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(8)
    os.dup2(s.fileno(), 7); s.close(); s = socket.socket(fileno=7)
while True:
    c, _ = s.accept()
    env = [os.environ.get(k, '-') for k in ('LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES')]
    c.sendall((' '.join([str(os.getpid())] + env) + '\\n').encode()); c.close()
`;
import { readToEnd } from '../support/tcp.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const ask = readToEnd;

async function serverPod(name: string, node: string, port: number): Promise<void> {
  await t.c.core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name, namespace: 'default' },
      spec: {
        nodeName: node,
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'app', image: 'host', command: ['python3', '-c', SERVER, String(port)] }],
      },
    },
  });
}

/** The pod's python server (not its launcher), found through its cgroup. */
async function serverOf(name: string): Promise<number> {
  return until(`pod ${name} running its server`, async () => {
    const pod = await t.c.core.readNamespacedPod({ name, namespace: 'default' });
    if (pod.status?.phase !== 'Running') return undefined;
    const ids = (pod.status.containerStatuses ?? []).map((s) => s.containerID ?? '');
    const cg = findPodCgroup(pod.metadata?.uid ?? '', ids);
    return listTasks(cg.containers[0]!.cgroup).pids.find((p) => {
      try {
        const fds = fdTable(p);
        return /python/.test(readlinkSync(`/proc/${p}/exe`)) && /^socket:/.test(fds['3'] ?? fds['7'] ?? '');
      } catch {
        return false;
      }
    });
  });
}

/** The LISTEN_* variables of the environment `pid` was exec'd with. */
function listenEnv(pid: number): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter((kv) => kv.startsWith('LISTEN_'))
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

describe('socket handoff in pods', () => {
  it('a Migration with listenFds: the replacement resumes on its saved listener at fd 3', async () => {
    const [n1, n2] = t.cp.nodes.map((n) => n.name);
    const port = await freePort();
    await serverPod('web', n1!, port);
    const source = await serverOf('web');
    expect(await until('the source answers', () => ask(port))).toBe(`${source} - - -\n`);
    const inode = fdTable(source)['7'];
    expect(inode).toMatch(/^socket:/);
    await kubectl(
      t,
      `apiVersion: fdckpt.io/v1alpha1\nkind: Migration\nmetadata: {name: web, namespace: default}\n` +
        `spec: {podName: web, targetNode: ${n2!}, listenFds: true}\n`,
      'apply',
      '-f',
      '-',
    );
    const m = await finished(t, 'web');
    expect(m.status?.phase).toBe('Succeeded');
    const restore = (await t.c.custom.getNamespacedCustomObject({
      group: 'fdckpt.io',
      version: 'v1alpha1',
      namespace: 'default',
      plural: 'restores',
      name: 'web',
    })) as Restore;
    expect(restore.spec.listenFds).toBe(true);
    const pid = await serverOf(m.status?.targetPod ?? '');
    expect(listenEnv(pid)).toEqual({ LISTEN_FDS: '1', LISTEN_PID: String(pid), LISTEN_FDNAMES: 'fd7' });
    const table = fdTable(pid);
    expect(table['3']).toMatch(/^socket:/);
    expect(table['7']).toBeUndefined();
    // Once the frozen source is gone, every connection reaches the copy, which bound nothing.
    await until('source pod gone', async () => ((await podGone(t, 'web')) ? true : undefined));
    const answer = await until('the copy answers', async () => {
      const a = await ask(port);
      return a.startsWith(`${pid} `) ? a : undefined;
    });
    expect(answer).toBe(`${pid} 1 ${pid} fd7\n`);
  }, 120_000);

  it('a Restore with listenFds into a new pod: LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES', async () => {
    const [n1] = t.cp.nodes.map((n) => n.name);
    const port = await freePort();
    await serverPod('api', n1!, port);
    await serverOf('api');
    await kubectl(
      t,
      'apiVersion: fdckpt.io/v1alpha1\nkind: Checkpoint\nmetadata: {name: api, namespace: default}\nspec: {podName: api}\n',
      'apply',
      '-f',
      '-',
    );
    const get = (plural: string): Promise<unknown> =>
      t.c.custom.getNamespacedCustomObject({
        group: 'fdckpt.io',
        version: 'v1alpha1',
        namespace: 'default',
        plural,
        name: 'api',
      });
    await until('checkpoint api Ready', async () =>
      ((await get('checkpoints')) as Checkpoint).status?.phase === 'Ready' ? true : undefined,
    );
    await kubectl(
      t,
      'apiVersion: fdckpt.io/v1alpha1\nkind: Restore\nmetadata: {name: api, namespace: default}\n' +
        `spec: {checkpointName: api, target: {newPod: {name: api-copy, nodeName: ${n1!}}}, listenFds: true}\n`,
      'apply',
      '-f',
      '-',
    );
    const r = await until('restore api done', async () => {
      const x = (await get('restores')) as Restore;
      return x.status?.phase === 'Ready' || x.status?.phase === 'Failed' ? x : undefined;
    });
    expect(r.status?.phase).toBe('Ready');
    const pid = await serverOf('api-copy');
    expect(listenEnv(pid)).toEqual({ LISTEN_FDS: '1', LISTEN_PID: String(pid), LISTEN_FDNAMES: 'fd7' });
    expect(fdTable(pid)['3']).toMatch(/^socket:/);
  }, 120_000);
});
