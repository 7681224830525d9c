/**
 * Faults injected at each step of a migration on the two-node local control
 * plane; every one must roll back with the source pod still there, running
 * (thawed), the target pod gone, and the Migration Failed with the reason.
 *
 * Node 1's agent runs as its own process (the real `fdckpt agent`), so that
 * it can really die. The image path between the agents goes through a TCP
 * relay advertised in node 1's place: one that flips a byte of the body
 * (corruption in transit), one that passes the body slowly so that the
 * source agent is still sending when the test SIGKILLs it. The target node
 * going away is its kubelet stopped and its Node deleted while the target
 * pod waits.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server } from 'node:net';
import { join } from 'node:path';
import type { Checkpoint, Migration } from '../../src/api/index.js';
import { TRANSFER_ENDPOINT_ANNOTATION } from '../../src/api/index.js';
import { findPodCgroup, isFrozen } from '../../src/agent/cgroup/index.js';
import { advertiseEndpoint } from '../../src/agent/migration/images.js';
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

interface Relay {
  url: string;
  /** Whether the first body bytes went through to the target. */
  bodyStarted(): boolean;
  /** Body bytes read from node 1's agent so far. */
  upstreamBodyBytes(): number;
  /** Accept no more connections (as a dead agent's port); the current ones go on. */
  stopListening(): void;
  close(): Promise<void>;
}

/**
 * A relay to node 1's transfer server that corrupts the response body, or
 * passes it slowly: one socket read every 50 ms, with backpressure, so that
 * the agent blocks in its write while the image is far from all sent.
 */
async function relay(mode: 'corrupt' | 'slow'): Promise<Relay> {
  const upstream = new URL(await endpointOfNode1());
  let bodyBytes = 0;
  let started = false;
  const server: Server = createServer((client) => {
    const up = connect(Number(upstream.port), upstream.hostname);
    client.pipe(up);
    let head = Buffer.alloc(0);
    let bodyAt = -1;
    let corrupted = false;
    up.on('data', (chunk: Buffer) => {
      if (bodyAt < 0) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        bodyAt = end + 4;
        chunk = head;
        bodyBytes += chunk.length - bodyAt;
      } else bodyBytes += chunk.length;
      if (mode === 'corrupt') {
        // Flip the last byte of the first chunk that carries body bytes.
        if (!corrupted && chunk.length > bodyAt) {
          chunk[chunk.length - 1] = (chunk[chunk.length - 1] ?? 0) ^ 0xff;
          corrupted = true;
        }
        client.write(chunk);
        bodyAt = 0;
      } else {
        client.write(chunk);
        if (bodyBytes > 0) started = true;
        up.pause();
        setTimeout(() => up.resume(), 50);
      }
    });
    up.on('end', () => client.end());
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const closed = new Promise<void>((resolve) => server.on('close', () => resolve()));
  return {
    url: `http://127.0.0.1:${port}`,
    bodyStarted: () => started,
    upstreamBodyBytes: () => bodyBytes,
    stopListening: () => server.close(),
    close: () => {
      if (server.listening) server.close();
      return closed;
    },
  };
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

async function migrate(name: string, pod: string, timeoutSeconds = 60): Promise<Migration> {
  await kubectl(
    t,
    `apiVersion: fdckpt.io/v1alpha1\nkind: Migration\nmetadata: {name: ${name}, namespace: default}\nspec: {podName: ${pod}, targetNode: ${n2}, timeoutSeconds: ${timeoutSeconds}}\n`,
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
  it('an image corrupted in transit rolls back (ChecksumMismatch)', async () => {
    const pod = 'src-corrupt';
    await barePod(t, pod, n1, `exec 3<${join(t.tmp, 'data.txt')}; exec sleep 1000`);
    const pid = await sleepOf(t, pod);
    const table = fdTable(pid);
    const endpoint = await endpointOfNode1();
    const r = await relay('corrupt');
    await advertiseEndpoint(t.c.core, n1, r.url);
    try {
      const m = await migrate('m-corrupt', pod);
      expect(m.status?.phase).toBe('Failed');
      expect(readyReason(m)).toBe('ChecksumMismatch');
      expect(m.status?.conditions?.find((c) => c.type === 'RolledBack')?.status).toBe('True');
      expect(await podGone(t, m.status?.targetPod ?? '')).toBe(true);
      await sourceIntact(pod, pid, table);
    } finally {
      await advertiseEndpoint(t.c.core, n1, endpoint);
      await r.close();
    }
  }, 120_000);

  it('the source agent SIGKILLed mid-transfer: the rollback waits for it, and its restart thaws the source', async () => {
    const pod = 'src-killed';
    // A big image (about 23 MB: 6000 open files with 3.8 kB paths), so that the agent is
    // still sending it when it dies, far beyond what the sockets buffer.
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
    const agent = t.agentProcess!;
    const r = await relay('slow');
    await advertiseEndpoint(t.c.core, n1, r.url);
    try {
      await kubectl(
        t,
        `apiVersion: fdckpt.io/v1alpha1\nkind: Migration\nmetadata: {name: m-killed, namespace: default}\nspec: {podName: ${pod}, targetNode: ${n2}, timeoutSeconds: 600}\n`,
        'apply',
        '-f',
        '-',
      );
      await until('the image body on its way', () => Promise.resolve(r.bodyStarted() || undefined), 120_000);
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
      expect(r.upstreamBodyBytes()).toBeGreaterThan(0);
      expect(r.upstreamBodyBytes()).toBeLessThan(ckpt.status?.image?.size ?? 0);
      // Nobody thaws it while its agent is down: the source is still frozen.
      const uid = (await t.c.core.readNamespacedPod({ name: pod, namespace: 'default' })).metadata?.uid ?? '';
      expect(isFrozen(findPodCgroup(uid).pod)).toBe(true);
      expect(agent.pid).toBeUndefined();

      // Back, as its DaemonSet would restart it: it finds the thaw request.
      await agent.start();
      const m = await finished(t, 'm-killed');
      expect(m.status?.phase).toBe('Failed');
      // The body was cut short (Truncated); a transfer that retries finds the agent gone (Unreachable).
      expect(['Truncated', 'Unreachable']).toContain(readyReason(m));
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
