/**
 * Who may fetch a Checkpoint's image from the node that holds it (issue 12's last open
 * item; issue 10: "no agent may read Secrets outside what its node needs"). The fetcher
 * is another node's agent, as the API server says of the token it shows (TokenReview: the
 * agent ServiceAccount, the audience fdckpt.io/transfer, the node of the pod the token is
 * bound to), and it may have the image only while a Restore of that Checkpoint is
 * assigned to its node. Before, every agent could read every per-Migration token Secret,
 * so a compromised node could fetch any node's images: here node n3's agent, holding
 * real credentials of its own, is refused n1's image that n2 may fetch.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthenticationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { Checkpoint } from '../../src/api/index.js';
import { DEFAULT_OPERATOR_NAMESPACE, TRANSFER_AUDIENCE } from '../../src/api/index.js';
import { imagePathFor } from '../../src/agent/daemon/checkpoint.js';
import { imageLookup } from '../../src/agent/migration/images.js';
import { transferAuthorizer } from '../../src/agent/migration/transfer-auth.js';
import { startTransferServer } from '../../src/agent/transfer/server.js';
import type { RunningTransferServer, TransferAuthorizer } from '../../src/agent/transfer/server.js';
import type { Harness } from '../controller/support.js';
import { createCheckpoint, makePod, startHarness } from '../controller/support.js';
import type { AgentIdentity } from '../support/agents.js';
import { agentIdentities, assignRestore } from '../support/agents.js';
import { bindingOf, writeBoundImage } from '../support/bound-image.js';

let h: Harness;
let dir: string;
let ckpt: Checkpoint;
let agents: Map<string, AgentIdentity>;
const agent = (node: string): AgentIdentity => agents.get(node)!;
let server: RunningTransferServer;
/** Swapped per test where the rule itself is changed (the bound on reviews). */
let authorize: TransferAuthorizer;
let refusals: string[];

beforeAll(async () => {
  h = await startHarness();
  dir = mkdtempSync(join(tmpdir(), 'fdckpt-sec-tauth-'));
  for (const n of ['n1', 'n2', 'n3']) await h.core.createNode({ body: { metadata: { name: n } } });
  await makePod(h, 'src', { node: 'n1', phase: 'Running' });
  ckpt = await createCheckpoint(h, 'c1', { podName: 'src' });
  const path = imagePathFor(join(dir, 'n1'), ckpt);
  const data = await writeBoundImage(path, bindingOf(ckpt));
  ckpt = await h.checkpoints.replaceStatus({
    ...ckpt,
    status: { nodeName: 'n1', image: { node: 'n1', path, size: data.length, sha256: 'a'.repeat(64) } },
  });
  agents = await agentIdentities(h, ['n1', 'n2', 'n3']);
  await assignRestore(h, 'r-n2', 'c1', 'n2');
  authorize = agent('n1').authorizer;
  refusals = [];
  server = await startTransferServer({
    host: '127.0.0.1',
    root: join(dir, 'n1'),
    authorize: (credential, ns, name) => authorize(credential, ns, name),
    lookup: imageLookup({ nodeName: 'n1', dataDir: join(dir, 'n1'), checkpoints: h.checkpoints }),
    onError: (m) => refusals.push(m),
  });
}, 120_000);
afterAll(async () => {
  await server?.close();
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

function fetchC1(bearer?: string): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(
      `${server.url}/v1/images/default/c1`,
      { headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ code: res.statusCode ?? 0, body: Buffer.concat(chunks).toString().trim() }),
        );
      },
    );
    req.on('error', reject);
  });
}

/** A token from the admin's TokenRequest: any ServiceAccount, any audience, bound or not. */
async function adminToken(namespace: string, sa: string, audiences: string[]): Promise<string> {
  const tr = await h.core.createNamespacedServiceAccountToken({
    name: sa,
    namespace,
    body: { spec: { audiences, expirationSeconds: 600 } },
  });
  return tr.status?.token ?? '';
}

/** The bearer token a kubeconfig's user holds. */
function apiToken(kc: KubeConfig): string {
  return kc.getCurrentUser()?.token ?? '';
}

describe('a transfer server gives an image only to the agent of a node that restores it', () => {
  it('serves n2’s agent, which has a Restore of c1 assigned', async () => {
    const got = await fetchC1(agent('n2').transferToken);
    expect(got.code).toBe(200);
  });

  it('refuses n3’s agent, a real agent of a real node with nothing to restore (403)', async () => {
    const got = await fetchC1(agent('n3').transferToken);
    expect(got).toEqual({
      code: 403,
      body: 'no Restore of checkpoint default/c1 in progress is assigned to node n3',
    });
    expect(refusals.join('\n')).toContain('refused (403): no Restore of checkpoint default/c1');
  });

  it('refuses once n2’s Restore is finished, or when it restores another Checkpoint', async () => {
    const r = await h.restores.get('default', 'r-n2');
    await h.restores.replaceStatus({ ...r, status: { phase: 'Ready' } });
    expect((await fetchC1(agent('n2').transferToken)).code).toBe(403);
    await h.restores.delete(r);
    await assignRestore(h, 'r-other', 'c2', 'n2');
    expect((await fetchC1(agent('n2').transferToken)).code).toBe(403);
    await assignRestore(h, 'r-n2b', 'c1', 'n2');
    expect((await fetchC1(agent('n2').transferToken)).code).toBe(200);
  });

  it('refuses n2’s API token: another audience (401), so a server cannot replay what it is shown', async () => {
    const got = await fetchC1(apiToken(agent('n2').kc));
    expect(got.code).toBe(401);
    expect(got.body).toMatch(/^the API server did not authenticate the token/);
  });

  it('the transfer token opens no API', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: h.cluster.url, skipTLSVerify: true }],
      users: [{ name: 'u', token: agent('n2').transferToken }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    await expect(
      kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'default' }),
    ).rejects.toMatchObject({ code: 401 });
  });

  it('refuses another ServiceAccount’s token and an agent token bound to no pod (403)', async () => {
    const other = await fetchC1(await adminToken('default', 'default', [TRANSFER_AUDIENCE]));
    expect(other).toEqual({
      code: 403,
      body: 'system:serviceaccount:default:default is not an fdckpt agent (system:serviceaccount:fdckpt-system:fdckpt-agent)',
    });
    const unbound = await fetchC1(
      await adminToken(DEFAULT_OPERATOR_NAMESPACE, 'fdckpt-agent', [TRANSFER_AUDIENCE]),
    );
    expect(unbound.code).toBe(403);
    expect(unbound.body).toMatch(/^the token names no node \(authentication.kubernetes.io\/node-name\)/);
  });

  it('refuses no token, garbage and an oversize token (401), the last without asking the API server', async () => {
    expect((await fetchC1()).code).toBe(401);
    expect((await fetchC1('')).code).toBe(401);
    expect((await fetchC1('not-a-jwt')).code).toBe(401);
    let asked = 0;
    const counting = authorize;
    authorize = (c, ns, n) => {
      asked++;
      return counting(c, ns, n);
    };
    try {
      expect(await fetchC1('x'.repeat(9 * 1024))).toEqual({
        code: 401,
        body: 'the bearer token is too long',
      });
      expect(asked).toBe(0);
    } finally {
      authorize = counting;
    }
  });

  it('answers 503 past the reviews in flight, without asking', async () => {
    const real = agent('n1').kc.makeApiClient(AuthenticationV1Api);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let reviews = 0;
    const held = {
      createSelfSubjectReview: real.createSelfSubjectReview.bind(real),
      createTokenReview: async (...args: Parameters<AuthenticationV1Api['createTokenReview']>) => {
        reviews++;
        await gate;
        return real.createTokenReview(...args);
      },
    } as unknown as AuthenticationV1Api;
    const normal = authorize;
    authorize = transferAuthorizer({
      authn: held,
      restores: agent('n1').restores,
      nodeName: 'n1',
      maxReviews: 1,
    });
    try {
      const first = fetchC1(agent('n2').transferToken);
      // The first is held in its review: the second finds the one slot taken.
      for (let i = 0; i < 200 && reviews === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(reviews).toBe(1);
      expect(await fetchC1(agent('n2').transferToken)).toEqual({
        code: 503,
        body: '1 authorizations in progress; try again',
      });
      expect(reviews).toBe(1);
      release();
      expect((await first).code).toBe(200);
    } finally {
      authorize = normal;
    }
  });
});
