/**
 * Issue 12 item 2, the part the image binding left open: every node's agent runs as the
 * one ServiceAccount fdckpt-agent, and RBAC let it write the status of any Checkpoint or
 * Restore and patch any Node — so node B's agent could report the image of a Checkpoint
 * assigned to node A, or replace node A's transfer endpoint and certificate pin.
 * deploy/agent-admission.yaml's ValidatingAdmissionPolicies hold each agent to the node
 * its token is bound to. A real kube-apiserver with deploy/ applied as shipped, agent
 * tokens minted the way the local plane mints them (by the node, bound to a pod on it).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthenticationV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Checkpoint, Restore } from '../../src/api/index.js';
import {
  CHECKPOINT,
  GROUP,
  NODE_LABEL,
  RESTORE,
  TRANSFER_CERT_ANNOTATION,
  VERSION,
} from '../../src/api/index.js';
import { advertiseEndpoint } from '../../src/agent/migration/images.js';
import { ResourceClient, loadKubeConfig, makeClients, type Clients } from '../../src/kube/client.js';
import { adminKubeConfig, startCluster, type LocalCluster } from '../../src/local/cluster/cluster.js';
import {
  AGENT_SERVICE_ACCOUNT,
  OPERATOR_NAMESPACE,
  agentPodName,
  installOperator,
} from '../../src/local/cluster/install.js';

const A = 'node-a';
const B = 'node-b';
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

let dir: string;
let cluster: LocalCluster;
/** Objects only policiesInForce writes to. */
const PROBE_NODE = 'node-probe';
const PROBE_CHECKPOINT = 'ckpt-probe';
let admin: Clients;
/** Clients of node B's agent (its token bound to its pod on node B), and of an unbound token. */
let agentB: Clients;
let unbound: Clients;

interface ApiError {
  code?: number;
  body?: unknown;
}

/** The API's answer to `write`: 'ok', or the HTTP code and the message of its Status. */
async function answer(write: () => Promise<unknown>): Promise<string> {
  try {
    await write();
    return 'ok';
  } catch (e) {
    const err = e as ApiError;
    if (err.code === undefined) throw e;
    const body = typeof err.body === 'string' ? err.body : JSON.stringify(err.body);
    const message = (JSON.parse(body) as { message?: string }).message ?? body;
    return `${err.code} ${message}`;
  }
}

/**
 * Waits until both policies are in force (the API server loads them a moment after they
 * are stored) by probing objects no test looks at: a write under test that landed before
 * that would change what the test reads back (CI once saw the forged image stored).
 */
async function policiesInForce(): Promise<void> {
  const probes = [
    reportCounts(agentB, PROBE_CHECKPOINT),
    patchNode(agentB, PROBE_NODE, { annotations: { [TRANSFER_CERT_ANNOTATION]: '0'.repeat(64) } }),
  ];
  for (let i = 0; i < 100; i++) {
    const got = await Promise.all(probes.map((p) => answer(p)));
    if (got.every((g) => g.startsWith('403 '))) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the agent policies were not in force 20 s after they were applied');
}

/** One write under test, once the policies are in force (beforeAll waited for that). */
const enforced = answer;

const ckpts = (c: Clients): ResourceClient<Checkpoint> =>
  new ResourceClient<Checkpoint>(c.custom, CHECKPOINT);
const restores = (c: Clients): ResourceClient<Restore> => new ResourceClient<Restore>(c.custom, RESTORE);

/** A Checkpoint the controller assigned to `node`: labelled, and status.nodeName set, as it does. */
async function assignedCheckpoint(name: string, node: string): Promise<void> {
  await admin.custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: 'default',
    plural: CHECKPOINT.plural,
    body: {
      apiVersion: 'fdckpt.io/v1alpha1',
      kind: 'Checkpoint',
      metadata: { name, namespace: 'default', labels: { [NODE_LABEL]: node } },
      spec: { podName: 'p' },
    },
  });
  const c = await ckpts(admin).get('default', name);
  await ckpts(admin).replaceStatus({ ...c, status: { phase: 'Scheduled', nodeName: node } });
}

async function assignedRestore(name: string, node: string): Promise<void> {
  await admin.custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: 'default',
    plural: RESTORE.plural,
    body: {
      apiVersion: 'fdckpt.io/v1alpha1',
      kind: 'Restore',
      metadata: { name, namespace: 'default', labels: { [NODE_LABEL]: node } },
      spec: { checkpointName: 'c', target: { newPod: {} } },
    },
  });
  const r = await restores(admin).get('default', name);
  await restores(admin).replaceStatus({ ...r, status: { phase: 'Scheduled', nodeName: node } });
}

/** What an agent writes: its counts on a Checkpoint (read fresh, so only the policy can refuse). */
function reportCounts(as: Clients, name: string, extra: Partial<NonNullable<Checkpoint['status']>> = {}) {
  return async (): Promise<unknown> => {
    const c = await ckpts(as).get('default', name);
    return ckpts(as).replaceStatus({ ...c, status: { ...c.status, totalFds: 3, ...extra } });
  };
}

function reportReplayed(as: Clients, name: string) {
  return async (): Promise<unknown> => {
    const r = await restores(as).get('default', name);
    return restores(as).replaceStatus({ ...r, status: { ...r.status, fdsReplayed: 3 } });
  };
}

function patchNode(as: Clients, name: string, metadata: object) {
  return (): Promise<unknown> => as.core.patchNode({ name, body: { metadata } }, mergePatch);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fdckpt-agent-identity-'));
  cluster = await startCluster({ dataDir: dir, controllerManager: false, scheduler: false });
  admin = makeClients(adminKubeConfig(cluster));
  for (const name of [A, B])
    await admin.core.createNode({ body: { metadata: { name, labels: { 'kubernetes.io/hostname': name } } } });
  const credentials = await installOperator(cluster, cluster.adminKubeconfig);
  agentB = makeClients(loadKubeConfig((await credentials.agent(B)).kubeconfig));
  unbound = makeClients(
    loadKubeConfig(
      await cluster.serviceAccountKubeconfig(
        OPERATOR_NAMESPACE,
        AGENT_SERVICE_ACCOUNT,
        join(dir, 'unbound.kubeconfig'),
      ),
    ),
  );
  await assignedCheckpoint('ckpt-a', A);
  await assignedCheckpoint('ckpt-b', B);
  await assignedRestore('restore-a', A);
  await assignedRestore('restore-b', B);
  await admin.core.createNode({ body: { metadata: { name: PROBE_NODE } } });
  await assignedCheckpoint(PROBE_CHECKPOINT, PROBE_NODE);
  await policiesInForce();
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the local plane's agent token is bound to the agent's pod on its node, and the API server says so", async () => {
  const review = await agentB.kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
  const user = review.status?.userInfo;
  expect(user?.username).toBe(`system:serviceaccount:${OPERATOR_NAMESPACE}:${AGENT_SERVICE_ACCOUNT}`);
  expect(user?.extra?.['authentication.kubernetes.io/node-name']).toEqual([B]);
  expect(user?.extra?.['authentication.kubernetes.io/pod-name']).toEqual([agentPodName(B)]);
});

describe("node B's agent", () => {
  test('may not write the status of a Checkpoint or a Restore assigned to node A', async () => {
    const forged = reportCounts(agentB, 'ckpt-a', {
      image: { node: A, path: '/forged', size: 1, sha256: 'f'.repeat(64) },
    });
    expect(await enforced(forged)).toContain(
      '403 checkpoints.fdckpt.io "ckpt-a" is forbidden: ' +
        "ValidatingAdmissionPolicy 'fdckpt-agent-status' with binding 'fdckpt-agent-status' denied request: " +
        'the fdckpt agent on node node-b may write the status of work assigned to its own node only; ' +
        'this object is assigned (label fdckpt.io/node) to node node-a',
    );
    expect(await enforced(reportReplayed(agentB, 'restore-a'))).toMatch(
      /^403 .*assigned \(label fdckpt.io\/node\) to node node-a/,
    );
    expect((await ckpts(admin).get('default', 'ckpt-a')).status).toEqual({ phase: 'Scheduled', nodeName: A });
  });

  test("writes its own node's Checkpoint and Restore, but may not move them or place their image elsewhere", async () => {
    expect(await answer(reportCounts(agentB, 'ckpt-b'))).toBe('ok');
    expect(
      await answer(
        reportCounts(agentB, 'ckpt-b', { image: { node: B, path: '/img', size: 1, sha256: 'a'.repeat(64) } }),
      ),
    ).toBe('ok');
    expect(await answer(reportReplayed(agentB, 'restore-b'))).toBe('ok');
    expect(await answer(reportCounts(agentB, 'ckpt-b', { nodeName: A }))).toMatch(
      /^403 .*status.nodeName is the controller's assignment; an agent may not change it/,
    );
    expect(
      await answer(
        reportCounts(agentB, 'ckpt-b', { image: { node: A, path: '/img', size: 1, sha256: 'a'.repeat(64) } }),
      ),
    ).toMatch(/^403 .*may report an image on its own node only, not on node-a/);
    expect((await ckpts(admin).get('default', 'ckpt-b')).status?.image?.node).toBe(B);
  });

  test("may not patch node A's transfer pin, nor its own Node's labels or other annotations", async () => {
    expect(
      await enforced(patchNode(agentB, A, { annotations: { [TRANSFER_CERT_ANNOTATION]: 'f'.repeat(64) } })),
    ).toMatch(/^403 .*the fdckpt agent on node node-b may change its own Node only, not node-a/);
    expect(await answer(patchNode(agentB, B, { labels: { 'kubernetes.io/hostname': A } }))).toMatch(
      /^403 .*may not change a Node's labels, finalizers, owners or spec/,
    );
    expect(await answer(patchNode(agentB, B, { annotations: { 'example.com/other': 'x' } }))).toMatch(
      /^403 .*may change only the annotations fdckpt.io\/transfer-endpoint and fdckpt.io\/transfer-cert-sha256/,
    );
    const nodeA = await admin.core.readNode({ name: A });
    expect(nodeA.metadata?.annotations?.[TRANSFER_CERT_ANNOTATION]).toBeUndefined();
  });

  test('advertises its own transfer endpoint and pin, as the agent does', async () => {
    const pin = 'b'.repeat(64);
    expect(await answer(() => advertiseEndpoint(agentB.core, B, 'https://127.0.0.1:9999', pin))).toBe('ok');
    const nodeB = await admin.core.readNode({ name: B });
    expect(nodeB.metadata?.annotations?.[TRANSFER_CERT_ANNOTATION]).toBe(pin);
    expect(nodeB.metadata?.labels).toEqual({ 'kubernetes.io/hostname': B });
  });
});

test('a token bound to no pod on a node is refused, saying why', async () => {
  const why =
    /^403 .*the fdckpt agent's token names no node \(userInfo.extra authentication.kubernetes.io\/node-name\)/;
  expect(await enforced(reportCounts(unbound, 'ckpt-b'))).toMatch(why);
  expect(
    await enforced(patchNode(unbound, B, { annotations: { [TRANSFER_CERT_ANNOTATION]: 'c'.repeat(64) } })),
  ).toMatch(why);
});
