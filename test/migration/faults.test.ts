/**
 * Faults injected at each step of a migration on the two-node local control
 * plane; every one must roll back with the source pod still there, running
 * (thawed), the target pod gone, and the Migration Failed with the reason.
 *
 * The image path between the agents goes through a TCP relay advertised in
 * node 1's place: one that flips a byte of the body (corruption in transit),
 * one that drops the connection after the first body bytes (the source agent
 * dying mid-transfer; test/transfer/transfer.test.ts SIGKILLs a real server
 * process for the same case). The target node going away is its kubelet
 * stopped and its Node deleted while the target pod waits.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readlinkSync, writeFileSync } from 'node:fs';
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

/** A relay to node 1's transfer server that corrupts or cuts the response body. */
async function relay(mode: 'corrupt' | 'cut'): Promise<{ url: string; close: () => Promise<void> }> {
  const upstream = new URL(realEndpoint);
  const server: Server = createServer((client) => {
    const up = connect(Number(upstream.port), upstream.hostname);
    client.pipe(up);
    let head = Buffer.alloc(0);
    let bodyAt = -1;
    up.on('data', (chunk: Buffer) => {
      if (bodyAt < 0) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        bodyAt = end + 4;
        chunk = head;
      }
      if (mode === 'corrupt') {
        if (chunk.length > bodyAt + 16) chunk[bodyAt + 16] = (chunk[bodyAt + 16] ?? 0) ^ 0xff;
        client.write(chunk);
        bodyAt = -Infinity;
      } else {
        // Headers and 16 body bytes, then the source is gone.
        client.write(chunk.subarray(0, bodyAt + 16));
        client.destroy();
        up.destroy();
      }
    });
    up.on('end', () => client.end());
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
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

/** The source agent really thawed a frozen pod (not "nothing to thaw"). */
async function thawedByAgent(checkpoint: string): Promise<void> {
  const ckpt = (await t.migrations.api.getNamespacedCustomObject({
    group: 'fdckpt.io',
    version: 'v1alpha1',
    namespace: 'default',
    plural: 'checkpoints',
    name: checkpoint,
  })) as Checkpoint;
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
    ['corrupt', 'ChecksumMismatch'],
    ['cut', 'Truncated'],
  ] as const)(
    'an image %s in transit rolls back (%s)',
    async (mode, reason) => {
      const pod = `src-${mode}`;
      await barePod(t, pod, n1, `exec 3<${join(t.tmp, 'data.txt')}; exec sleep 1000`);
      const pid = await sleepOf(t, pod);
      const table = fdTable(pid);
      const r = await relay(mode);
      await advertiseEndpoint(t.c.core, n1, r.url);
      try {
        const m = await migrate(`m-${mode}`, pod);
        expect(m.status?.phase).toBe('Failed');
        expect(readyReason(m)).toBe(reason);
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
