/**
 * Faults injected at each step of a migration on the two-node local control
 * plane; every one must roll back with the source pod still there, running
 * (thawed), the target pod gone, and the Migration Failed with the reason.
 *
 * The image path between the agents goes through a relay advertised in node
 * 1's place (its pinned certificate stays advertised): a man in the middle
 * with its own certificate (UntrustedPeer: with TLS, a byte flipped in
 * transit no longer reaches the digest check, TLS refuses it, see
 * test/transfer/resume.test.ts); a TCP relay that cuts the first connection
 * mid-transfer and then stays unreachable (the source agent dying for good:
 * rollback once the retries are spent), and one that cuts only the first
 * connection (the migration resumes the transfer and succeeds). The target
 * node going away is its kubelet stopped and its Node deleted while the
 * target pod waits.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import type { Checkpoint, Migration, Restore } from '../../src/api/index.js';
import { TRANSFER_ENDPOINT_ANNOTATION } from '../../src/api/index.js';
import { findPodCgroup, isFrozen } from '../../src/agent/cgroup/index.js';
import { advertiseEndpoint } from '../../src/agent/migration/images.js';
import { selfSignedCert } from '../../src/tls/x509.js';
import type { TwoNodes } from '../support/twonodes.js';
import {
  barePod,
  fdTable,
  finished,
  kubectl,
  podGone,
  sleepOf,
  startTwoNodes,
  until,
} from '../support/twonodes.js';

let t: TwoNodes;
let n1 = '';
let n2 = '';
let realEndpoint = '';

beforeAll(async () => {
  t = await startTwoNodes();
  [n1, n2] = t.cp.nodes.map((n) => n.name) as [string, string];
  const node = await t.c.core.readNode({ name: n1 });
  realEndpoint = node.metadata?.annotations?.[TRANSFER_ENDPOINT_ANNOTATION] ?? '';
  writeFileSync(join(t.tmp, 'data.txt'), 'hello\n');
}, 60_000);

afterAll(async () => {
  await t?.stop();
});

type Fault = 'mitm' | 'cut-then-down' | 'cut-once';

/**
 * Server bytes a cut relay forwards on its first connection: the TLS
 * handshake and the first full records of the body (a TLS record carries up
 * to 16 KiB and is readable only whole), so that the client keeps some.
 */
const CUT_AFTER = 48 * 1024;

/**
 * A relay to node 1's transfer server. mitm: terminates TLS with its own
 * certificate and forwards. cut-*: passes TLS through, but the first
 * connection is cut after CUT_AFTER bytes from the server (the pods of these
 * tests hold enough fds for their image to be larger); then it refuses every
 * connection (cut-then-down) or passes them (cut-once).
 */
async function relay(
  fault: Fault,
): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  const upstream = new URL(realEndpoint);
  const port = Number(upstream.port);
  const sockets = new Set<Socket>();
  let connections = 0;
  let accepted = 0;
  const track = (s: Socket): Socket => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    return s;
  };
  const onClient = (client: Socket, n: number): void => {
    track(client);
    if (n > 0 && fault === 'cut-then-down') return void client.destroy();
    const up = track(
      fault === 'mitm'
        ? tlsConnect({ host: upstream.hostname, port, rejectUnauthorized: false })
        : connect(port, upstream.hostname),
    );
    client.pipe(up);
    if (n > 0 || fault === 'mitm') return void up.pipe(client);
    let sent = 0;
    up.on('data', (chunk: Buffer) => {
      const room = CUT_AFTER - sent;
      sent += chunk.length;
      if (room > chunk.length) return void client.write(chunk);
      client.write(chunk.subarray(0, room), () => client.destroy());
      up.destroy();
    });
  };
  const server: Server =
    fault === 'mitm'
      ? createTlsServer(selfSignedCert('mitm', 1), (c) => onClient(c, 0))
      : createServer((c) => onClient(c, accepted++));
  // Counted at TCP accept: a client that drops the handshake still counts as an attempt.
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    url: `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A pod holding `n` more fds than fd 3, so that its image spans many TLS records. */
function manyFds(n: number): string {
  const data = join(t.tmp, 'data.txt');
  return (
    `exec 3<${data}; exec python3 -c "import os, resource\n` +
    `resource.setrlimit(resource.RLIMIT_NOFILE, (${n + 64}, ${n + 64}))\n` +
    `for i in range(${n}):\n  os.set_inheritable(os.open('${data}', os.O_RDONLY), True)\n` +
    `os.execvp('sleep', ['sleep', '1000'])"`
  );
}

/** The source pod exists, its process runs (not frozen) with the same table. */
async function sourceIntact(name: string, pid: number, table: Record<string, string>): Promise<void> {
  expect(await podGone(t, name)).toBe(false);
  const pod = await t.c.core.readNamespacedPod({ name, namespace: 'default' });
  expect(pod.metadata?.deletionTimestamp).toBeUndefined();
  expect(isFrozen(findPodCgroup(pod.metadata?.uid ?? '').pod)).toBe(false);
  expect(readlinkSync(`/proc/${pid}/exe`)).toMatch(/\/sleep$/);
  expect(fdTable(pid)).toEqual(table);
}

async function checkpoint(name: string): Promise<Checkpoint> {
  return (await t.migrations.api.getNamespacedCustomObject({
    group: 'fdckpt.io',
    version: 'v1alpha1',
    namespace: 'default',
    plural: 'checkpoints',
    name,
  })) as Checkpoint;
}

/** The source agent really thawed a frozen pod (not "nothing to thaw"). */
async function thawedByAgent(name: string): Promise<void> {
  const ckpt = await checkpoint(name);
  expect(ckpt.status?.conditions?.find((c) => c.type === 'Thawed')).toMatchObject({
    status: 'True',
    reason: 'Thawed',
  });
}

async function migrate(name: string, pod: string): Promise<Migration> {
  await kubectl(
    t,
    `apiVersion: fdckpt.io/v1alpha1\nkind: Migration\nmetadata: {name: ${name}, namespace: default}\nspec: {podName: ${pod}, targetNode: ${n2}, timeoutSeconds: 60}\n`,
    'apply',
    '-f',
    '-',
  );
  return finished(t, name);
}

function readyReason(m: Migration): string | undefined {
  return m.status?.conditions?.find((c) => c.type === 'Ready')?.reason;
}

describe('migration rollback on faults', () => {
  it.each([
    ['mitm', 'UntrustedPeer', 1],
    // The default retry policy: 5 attempts over about 15 s, then the Migration rolls back.
    ['cut-then-down', 'Unreachable', 5],
  ] as const)(
    'the image path %s rolls back (%s)',
    async (fault, reason, connections) => {
      const pod = `src-${fault}`;
      await barePod(t, pod, n1, manyFds(1500));
      const pid = await sleepOf(t, pod);
      const table = fdTable(pid);
      const r = await relay(fault);
      await advertiseEndpoint(t.c.core, n1, r.url);
      try {
        const m = await migrate(`m-${fault}`, pod);
        expect(m.status?.phase).toBe('Failed');
        expect(readyReason(m)).toBe(reason);
        if (connections > 1) expect(m.status?.rollbackReason).toMatch(/attempt 5 of 5/);
        expect(r.connections()).toBe(connections);
        expect(m.status?.conditions?.find((c) => c.type === 'RolledBack')?.status).toBe('True');
        expect(await podGone(t, m.status?.targetPod ?? '')).toBe(true);
        await sourceIntact(pod, pid, table);
      } finally {
        await advertiseEndpoint(t.c.core, n1, realEndpoint);
        await r.close();
      }
    },
    120_000,
  );

  it('a transfer cut once resumes, and the migration succeeds', async () => {
    const pod = 'src-cut-once';
    await barePod(t, pod, n1, manyFds(1500));
    const table = fdTable(await sleepOf(t, pod));
    const r = await relay('cut-once');
    await advertiseEndpoint(t.c.core, n1, r.url);
    try {
      const m = await migrate('m-cut-once', pod);
      expect(m.status?.phase).toBe('Succeeded');
      const restore = (await t.c.custom.getNamespacedCustomObject({
        group: 'fdckpt.io',
        version: 'v1alpha1',
        namespace: 'default',
        plural: 'restores',
        name: 'm-cut-once',
      })) as Restore;
      expect(restore.status?.transfer?.attempts).toBe(2);
      // Resumed, not restarted: the body bytes received are the image's, once.
      const ckpt = await checkpoint('m-cut-once');
      expect(ckpt.status?.image?.size).toBeGreaterThan(2 * CUT_AFTER);
      expect(restore.status?.transfer?.bytes).toBe(ckpt.status?.image?.size);
      expect(r.connections()).toBe(2);
      expect(fdTable(await sleepOf(t, m.status?.targetPod ?? ''))).toEqual(table);
    } finally {
      await advertiseEndpoint(t.c.core, n1, realEndpoint);
      await r.close();
    }
  }, 120_000);

  it('the target node gone while the target pod waits rolls back (TargetNodeGone)', async () => {
    const pod = 'src-nodegone';
    await barePod(t, pod, n1, `exec 3<${join(t.tmp, 'data.txt')}; exec sleep 1000`);
    const pid = await sleepOf(t, pod);
    const table = fdTable(pid);
    await t.cp.kubelets[1]!.stop();
    const applied = kubectl(
      t,
      `apiVersion: fdckpt.io/v1alpha1\nkind: Migration\nmetadata: {name: m-nodegone, namespace: default}\nspec: {podName: ${pod}, targetNode: ${n2}, timeoutSeconds: 60}\n`,
      'apply',
      '-f',
      '-',
    );
    await applied;
    // Captured, Restore created, target pod bound to n2 and never started: now n2 goes.
    await until('the Restoring phase', async () =>
      (await t.migrations.get('default', 'm-nodegone')).status?.phase === 'Restoring' ? true : undefined,
    );
    await t.c.core.deleteNode({ name: n2 });
    const m = await finished(t, 'm-nodegone');
    expect(m.status?.phase).toBe('Failed');
    expect(readyReason(m)).toBe('TargetNodeGone');
    expect(await podGone(t, m.status?.targetPod ?? '')).toBe(true);
    await sourceIntact(pod, pid, table);
    await thawedByAgent('m-nodegone');
  }, 120_000);
});
