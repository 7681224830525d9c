/**
 * Faults injected at each step of a migration on the two-node local control
 * plane; every one must roll back with the source pod still there, running
 * (thawed), the target pod gone, and the Migration Failed with the reason.
 *
 * Node 1's agent runs as its own process (the real `fdckpt agent`), so that
 * it can really die. The image path between the agents goes through a relay
 * advertised in node 1's place (its pinned certificate stays advertised): a
 * man in the middle with its own certificate (UntrustedPeer: with TLS, a byte
 * flipped in transit no longer reaches the digest check, TLS refuses it, see
 * test/transfer/resume.test.ts); a TCP relay that passes the body slowly, so
 * that the source agent is still sending when the test SIGKILLs it; and one
 * that cuts only the first connection (the migration resumes the transfer and
 * succeeds). The target node going away is its kubelet stopped and its Node
 * deleted while the target pod waits.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  readlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
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
import { expectMigratedTable } from './tables.js';
import { sample, scrape } from '../support/metrics.js';

let t: TwoNodes;
let n1 = '';
let n2 = '';

beforeAll(async () => {
  t = await startTwoNodes({ agentProcess: 0 });
  [n1, n2] = t.cp.nodes.map((n) => n.name) as [string, string];
  writeFileSync(join(t.tmp, 'data.txt'), 'hello\n');
}, 60_000);

afterAll(async () => {
  await t?.stop();
});

/** Where node 1's agent serves images now (a restarted agent has a new port). */
async function endpointOfNode1(): Promise<string> {
  const node = await t.c.core.readNode({ name: n1 });
  return node.metadata?.annotations?.[TRANSFER_ENDPOINT_ANNOTATION] ?? '';
}

type Fault = 'mitm' | 'cut-once' | 'slow';

/**
 * Server bytes a cut relay forwards on its first connection: the TLS
 * handshake and the first full records of the body (a TLS record carries up
 * to 16 KiB and is readable only whole), so that the client keeps some.
 */
const CUT_AFTER = 48 * 1024;

interface Relay {
  url: string;
  connections(): number;
  /** Bytes read from node 1's agent so far (TLS records: handshake and body). */
  upstreamBytes(): number;
  /** Accept no more connections (as a dead agent's port); the current ones go on. */
  stopListening(): void;
  /** slow: pass the rest at full speed. */
  release(): void;
  close(): Promise<void>;
}

/**
 * A relay to node 1's transfer server. mitm: terminates TLS with its own
 * certificate and forwards. cut-once: passes TLS through, but the first
 * connection is cut after CUT_AFTER bytes from the server (the pods of these
 * tests hold enough fds for their image to be larger). slow: passes TLS
 * through one socket read every 50 ms, with backpressure, so that the agent
 * blocks in its write while the image is far from all sent.
 */
async function relay(fault: Fault): Promise<Relay> {
  const upstream = new URL(await endpointOfNode1());
  const port = Number(upstream.port);
  const sockets = new Set<Socket>();
  let connections = 0;
  let accepted = 0;
  let upstreamBytes = 0;
  let throttled = true;
  const track = (s: Socket): Socket => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    return s;
  };
  const onClient = (client: Socket, n: number): void => {
    track(client);
    const up = track(
      fault === 'mitm'
        ? tlsConnect({ host: upstream.hostname, port, rejectUnauthorized: false })
        : connect(port, upstream.hostname),
    );
    client.pipe(up);
    if (fault === 'slow') {
      up.on('data', (chunk: Buffer) => {
        upstreamBytes += chunk.length;
        client.write(chunk);
        if (!throttled) return;
        up.pause();
        setTimeout(() => up.resume(), 50);
      });
      up.on('end', () => client.end());
      return;
    }
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
    upstreamBytes: () => upstreamBytes,
    stopListening: () => server.close(),
    release: () => {
      throttled = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        if (server.listening) server.close(() => resolve());
        else resolve();
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

/** Applies a Migration of `pod` to node 2 with kubectl. */
async function applyMigration(name: string, pod: string, timeoutSeconds = 60): Promise<void> {
  await kubectl(
    t,
    `apiVersion: fdckpt.io/v1alpha1\nkind: Migration\nmetadata: {name: ${name}, namespace: default}\nspec: {podName: ${pod}, targetNode: ${n2}, timeoutSeconds: ${timeoutSeconds}}\n`,
    'apply',
    '-f',
    '-',
  );
}

async function migrate(name: string, pod: string): Promise<Migration> {
  await applyMigration(name, pod);
  return finished(t, name);
}

/** Waits until image records flow through a slow relay (past the TLS handshake, a few kB). */
async function imageFlowing(r: Relay): Promise<void> {
  await until(
    'the image body on its way',
    () => Promise.resolve(r.upstreamBytes() > 64 * 1024 || undefined),
    120_000,
  );
}

function readyReason(m: Migration): string | undefined {
  return m.status?.conditions?.find((c) => c.type === 'Ready')?.reason;
}

/**
 * A pod with a big image (about 23 MB: 6000 open files with 3.8 kB paths), so
 * that its agent is still sending it long after the transfer starts, far
 * beyond what the sockets buffer.
 */
async function bigPod(pod: string): Promise<{ pid: number; table: Record<string, string> }> {
  const deep = join(t.tmp, ...Array.from({ length: 15 }, () => 'd'.repeat(250)));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'f'), 'x\n');
  writeFileSync(
    join(t.tmp, 'open-many.py'),
    [
      'import os, resource, sys',
      'path, n = sys.argv[1], int(sys.argv[2])',
      'soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)',
      'resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))',
      'for _ in range(n):',
      '    os.set_inheritable(os.open(path, os.O_RDONLY), True)',
      "os.execvp('sleep', ['sleep', '1000'])",
    ].join('\n'),
  );
  await barePod(t, pod, n1, `exec python3 ${join(t.tmp, 'open-many.py')} ${join(deep, 'f')} 6000`);
  const pid = await sleepOf(t, pod);
  const table = fdTable(pid);
  expect(Object.keys(table).length).toBeGreaterThan(6000);
  return { pid, table };
}

describe('migration rollback on faults', () => {
  it('a man in the middle of the image path rolls back (UntrustedPeer)', async () => {
    const pod = 'src-mitm';
    await barePod(t, pod, n1, manyFds(1500));
    const pid = await sleepOf(t, pod);
    const table = fdTable(pid);
    const endpoint = await endpointOfNode1();
    const r = await relay('mitm');
    await advertiseEndpoint(t.c.core, n1, r.url);
    try {
      const m = await migrate('m-mitm', pod);
      expect(m.status?.phase).toBe('Failed');
      expect(readyReason(m)).toBe('UntrustedPeer');
      // Refused at the handshake, never retried.
      expect(r.connections()).toBe(1);
      expect(m.status?.conditions?.find((c) => c.type === 'RolledBack')?.status).toBe('True');
      expect(await podGone(t, m.status?.targetPod ?? '')).toBe(true);
      await sourceIntact(pod, pid, table);
    } finally {
      await advertiseEndpoint(t.c.core, n1, endpoint);
      await r.close();
    }
  }, 120_000);

  it('a transfer cut once resumes, and the migration succeeds', async () => {
    const pod = 'src-cut-once';
    await barePod(t, pod, n1, manyFds(1500));
    const table = fdTable(await sleepOf(t, pod));
    const endpoint = await endpointOfNode1();
    const r = await relay('cut-once');
    await advertiseEndpoint(t.c.core, n1, r.url);
    // Node 2's agent (node 1's runs as a process): its counters before this migration.
    const counters = async (): Promise<[number, number]> => {
      const text = await scrape(t.agents[0]!.port);
      return [
        sample(text, 'fdckpt_agent_transfer_retries_total') ?? NaN,
        sample(text, 'fdckpt_agent_transfer_bytes_total') ?? NaN,
      ];
    };
    const [retriesBefore, bytesBefore] = await counters();
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
      // One retry, and every byte counted once, the cut attempt's included.
      const [retries, bytes] = await counters();
      expect(retries - retriesBefore).toBe(1);
      expect(bytes - bytesBefore).toBe(ckpt.status?.image?.size);
      expectMigratedTable(fdTable(await sleepOf(t, m.status?.targetPod ?? '')), table);
    } finally {
      await advertiseEndpoint(t.c.core, n1, endpoint);
      await r.close();
    }
  }, 120_000);

  it('the image corrupted on the source while it is sent rolls back (ChecksumMismatch)', async () => {
    const pod = 'src-corrupt';
    const { pid, table } = await bigPod(pod);
    const endpoint = await endpointOfNode1();
    const r = await relay('slow');
    await advertiseEndpoint(t.c.core, n1, r.url);
    try {
      await applyMigration('m-corrupt', pod, 600);
      await imageFlowing(r);
      // The last byte of the image on node 1's disk, not yet read by its agent: what the
      // target receives no longer matches the Checkpoint's SHA-256, and TLS cannot tell.
      const image = (await checkpoint('m-corrupt')).status?.image;
      const fd = openSync(image?.path ?? '', 'r+');
      try {
        const last = Buffer.alloc(1);
        readSync(fd, last, 0, 1, (image?.size ?? 1) - 1);
        writeSync(fd, Buffer.from([last[0]! ^ 0xff]), 0, 1, (image?.size ?? 1) - 1);
      } finally {
        closeSync(fd);
      }
      r.release();
      const m = await finished(t, 'm-corrupt');
      expect(m.status?.phase).toBe('Failed');
      expect(readyReason(m)).toBe('ChecksumMismatch');
      expect(m.status?.conditions?.find((c) => c.type === 'RolledBack')?.status).toBe('True');
      expect(await podGone(t, m.status?.targetPod ?? '')).toBe(true);
      await sourceIntact(pod, pid, table);
      await thawedByAgent('m-corrupt');
    } finally {
      await advertiseEndpoint(t.c.core, n1, endpoint);
      await r.close();
    }
  }, 300_000);

  it('the source agent SIGKILLed mid-transfer: the rollback waits for it, and its restart thaws the source', async () => {
    const pod = 'src-killed';
    const { pid, table } = await bigPod(pod);
    const agent = t.agentProcess!;
    const r = await relay('slow');
    await advertiseEndpoint(t.c.core, n1, r.url);
    try {
      await applyMigration('m-killed', pod, 600);
      await imageFlowing(r);
      await agent.kill();
      // A dead agent's port refuses connections; the relay's must too.
      r.stopListening();
      const rollingBack = await until(
        'the rollback waiting for the source agent',
        async () => {
          const m = await t.migrations.get('default', 'm-killed');
          const rolled = m.status?.conditions?.find((c) => c.type === 'RolledBack');
          return m.status?.phase === 'RollingBack' && rolled?.message.startsWith('waiting for the agent on')
            ? m
            : undefined;
        },
        180_000,
      );
      expect(rollingBack.status?.conditions?.find((c) => c.type === 'RolledBack')?.message).toBe(
        `waiting for the agent on ${n1} to thaw pod ${pod}`,
      );
      // Really mid-transfer: the agent died before it had sent the whole image.
      const ckpt = await checkpoint('m-killed');
      expect(r.upstreamBytes()).toBeLessThan(ckpt.status?.image?.size ?? 0);
      // Nobody thaws it while its agent is down: the source is still frozen.
      const uid = (await t.c.core.readNamespacedPod({ name: pod, namespace: 'default' })).metadata?.uid ?? '';
      expect(isFrozen(findPodCgroup(uid).pod)).toBe(true);
      expect(agent.pid).toBeUndefined();

      // Back, as its DaemonSet would restart it: it finds the thaw request.
      await agent.start();
      const m = await finished(t, 'm-killed');
      expect(m.status?.phase).toBe('Failed');
      // The fetch retried while the agent was down (5 attempts over about 15 s), then gave up.
      expect(readyReason(m)).toBe('Unreachable');
      expect(m.status?.rollbackReason).toMatch(/attempt 5 of 5/);
      expect(m.status?.conditions?.find((c) => c.type === 'RolledBack')?.status).toBe('True');
      expect(await podGone(t, m.status?.targetPod ?? '')).toBe(true);
      await thawedByAgent('m-killed');
      await sourceIntact(pod, pid, table);
      const n2images = join(t.cp.nodes[1]!.storageDir, 'images', 'default');
      await until('no part file left on the target node', () =>
        Promise.resolve(
          (existsSync(n2images) ? readdirSync(n2images) : []).some((f) => f.endsWith('.part'))
            ? undefined
            : true,
        ),
      );
    } finally {
      if (agent.pid === undefined) await agent.start();
      await r.close();
    }
  }, 300_000);

  it('the target node gone while the target pod waits rolls back (TargetNodeGone)', async () => {
    const pod = 'src-nodegone';
    await barePod(t, pod, n1, `exec 3<${join(t.tmp, 'data.txt')}; exec sleep 1000`);
    const pid = await sleepOf(t, pod);
    const table = fdTable(pid);
    await t.cp.kubelets[1]!.stop();
    await applyMigration('m-nodegone', pod);
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
