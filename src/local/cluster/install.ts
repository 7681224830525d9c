/**
 * Installing fdckpt into a local cluster the way a user installs it into theirs: the
 * built kubectl applies crds/ and deploy/'s namespace, RBAC, admission policies and
 * webhook configuration as shipped, and the controller and agents then run with tokens
 * of the ServiceAccounts those files create — so the cluster, not the harness, says what
 * they may do. Each agent's token is bound to a pod on its node, as a kubelet projects it.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { LocalCluster } from './cluster.js';
import { checkoutRoot, kubeBinary } from './binaries.js';

/** The operator's namespace and ServiceAccounts, as deploy/ names them. */
export const OPERATOR_NAMESPACE = 'fdckpt-system';
export const CONTROLLER_SERVICE_ACCOUNT = 'fdckpt-controller';
export const AGENT_SERVICE_ACCOUNT = 'fdckpt-agent';

/** What deploy/ installs besides the workloads (those are the in-process components here). */
const DEPLOY_ACCESS = [
  'namespace.yaml',
  'rbac-controller.yaml',
  'rbac-agent.yaml',
  'rbac-migration.yaml',
  'agent-admission.yaml',
  'webhook.yaml',
];

/** Runs the built kubectl with `kubeconfig`; rejects with its stderr on failure. */
export function kubectl(kubeconfig: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(kubeBinary('kubectl'), ['--kubeconfig', kubeconfig, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`kubectl ${args.join(' ')}: ${err.trim() || `status ${code}`}`)),
    );
    p.stdin.end(input ?? '');
  });
}

function root(): string {
  const r = checkoutRoot();
  if (!r) throw new Error('installing fdckpt needs its checkout (crds/ and deploy/)');
  return r;
}

/** Applies crds/ and waits until the API server serves every CRD. */
export async function installCrds(kubeconfig: string): Promise<void> {
  const dir = join(root(), 'crds');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  await kubectl(kubeconfig, ['apply', '--server-side', ...files.flatMap((f) => ['-f', join(dir, f)])]);
  await kubectl(kubeconfig, [
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    ...files.map((f) => `crd/${f.replace(/\.yaml$/, '')}`),
  ]);
  // Established is not yet served: until its watch cache is up, a new resource answers
  // 429 "storage is (re)initializing". Wait until each lists, as a client would retry.
  for (const f of files) {
    const resource = f.replace(/\.yaml$/, '');
    for (let i = 0; ; i++) {
      try {
        await kubectl(kubeconfig, ['get', resource, '--all-namespaces', '-o', 'name']);
        break;
      } catch (e) {
        if (i >= 100) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}

/** Kubeconfigs of the operator's two ServiceAccounts. */
export interface OperatorCredentials {
  controller: string;
  /** A kubeconfig for the agent of `node`, with a token bound to its pod there ({@link agentKubeconfig}). */
  agent(node: string): Promise<string>;
}

/** The pod that stands for node `node`'s agent on the local plane. */
export function agentPodName(node: string): string {
  return `fdckpt-agent-${node}`;
}

function errCode(e: unknown): number | undefined {
  const c = (e as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}

/**
 * A kubeconfig (written to `path`) for node `node`'s agent, made as a kubelet makes the
 * token it projects into the agent's pod: a Pod of the agent ServiceAccount bound to the
 * node stands for the agent (the agent runs in the caller's process; the pod's container
 * only sleeps, so that a process kubelet has something to run), and the node itself, with
 * its own credentials, asks for a token bound to that pod. NodeRestriction lets a node do
 * that only for pods on it; the API server writes the pod's node into the token and hands
 * it to admission as userInfo.extra `authentication.kubernetes.io/node-name`, which
 * deploy/agent-admission.yaml holds the agent to. The token dies with the pod.
 */
export async function agentKubeconfig(cluster: LocalCluster, node: string, path: string): Promise<string> {
  const admin = new KubeConfig();
  admin.loadFromFile(cluster.adminKubeconfig);
  const core = admin.makeApiClient(CoreV1Api);
  const name = agentPodName(node);
  const namespace = OPERATOR_NAMESPACE;
  let pod: V1Pod;
  try {
    pod = await core.createNamespacedPod({
      namespace,
      body: {
        metadata: {
          name,
          namespace,
          labels: { 'app.kubernetes.io/part-of': 'fdckpt', 'app.kubernetes.io/component': 'agent-identity' },
        },
        spec: {
          nodeName: node,
          serviceAccountName: AGENT_SERVICE_ACCOUNT,
          terminationGracePeriodSeconds: 1,
          tolerations: [{ operator: 'Exists' }],
          containers: [{ name: 'identity', image: 'local', command: ['sleep', 'infinity'] }],
        },
      },
    });
  } catch (e) {
    if (errCode(e) !== 409) throw e;
    pod = await core.readNamespacedPod({ name, namespace });
  }
  const asNode = new KubeConfig();
  // The node's identity (system:node:NODE), in a certificate of its own: the kubelet's files stay as they are.
  asNode.loadFromFile(
    cluster.pki.clientKubeconfig(
      join(cluster.dataDir, `node-${node}-tokens.kubeconfig`),
      cluster.url,
      `node-${node}-tokens`,
      {
        cn: `system:node:${node}`,
        o: ['system:nodes'],
      },
    ),
  );
  const nodeCore = asNode.makeApiClient(CoreV1Api);
  const request = {
    name: AGENT_SERVICE_ACCOUNT,
    namespace,
    body: {
      spec: {
        audiences: [],
        expirationSeconds: 24 * 3600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name, uid: pod.metadata?.uid },
      },
    },
  };
  // The Node authorizer learns of the new pod from its informer, a moment after the create.
  for (let i = 0; ; i++) {
    try {
      const token = (await nodeCore.createNamespacedServiceAccountToken(request)).status?.token;
      if (!token) throw new Error(`TokenRequest for the agent pod ${namespace}/${name} returned no token`);
      return cluster.tokenKubeconfig(`${namespace}:${AGENT_SERVICE_ACCOUNT}@${node}`, token, namespace, path);
    } catch (e) {
      if (errCode(e) !== 403 || i >= 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Applies deploy/'s namespace, RBAC, admission policies and webhook configuration (and
 * crds/ unless told not to), then mints a token for the controller's ServiceAccount; each
 * agent's is minted when asked for, bound to a pod on its node.
 */
export async function installOperator(
  cluster: LocalCluster,
  adminKubeconfig: string,
  options: { crds?: boolean } = {},
): Promise<OperatorCredentials> {
  if (options.crds ?? true) await installCrds(adminKubeconfig);
  const deploy = join(root(), 'deploy');
  await kubectl(adminKubeconfig, [
    'apply',
    '--server-side',
    ...DEPLOY_ACCESS.flatMap((f) => ['-f', join(deploy, f)]),
  ]);
  const dir = cluster.dataDir;
  return {
    controller: await cluster.serviceAccountKubeconfig(
      OPERATOR_NAMESPACE,
      CONTROLLER_SERVICE_ACCOUNT,
      join(dir, 'fdckpt-controller.kubeconfig'),
    ),
    agent: (node) => agentKubeconfig(cluster, node, join(dir, `fdckpt-agent-${node}.kubeconfig`)),
  };
}
