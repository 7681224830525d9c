/**
 * Installing fdckpt into a local cluster the way a user installs it into theirs: the
 * built kubectl applies crds/ and deploy/'s namespace, RBAC, admission policies and
 * webhook configuration as shipped, and the controller and agents then run with tokens
 * of the ServiceAccounts those files create — so the cluster, not the harness, says what
 * they may do. Each agent's token is bound to a pod on its node, as a kubelet projects it.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { readdirSync, writeFileSync } from 'node:fs';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { TRANSFER_AUDIENCE } from '../../api/index.js';
import type { LocalCluster } from './cluster.js';
import { checkoutRoot, kubeBinary } from './binaries.js';
import { endInput } from '../child-input.js';

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
    endInput(p.stdin, input ?? '', (e) => reject(e));
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

/** What a node's agent authenticates with, each token bound to its pod on the node ({@link agentCredentials}). */
export interface AgentCredentials {
  /** A kubeconfig for the API server. */
  kubeconfig: string;
  /** A file with its token for TRANSFER_AUDIENCE, which it shows other nodes' transfer servers. */
  transferTokenFile: string;
}

/** Credentials of the operator's two ServiceAccounts. */
export interface OperatorCredentials {
  /** The controller's kubeconfig. */
  controller: string;
  agent(node: string): Promise<AgentCredentials>;
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
 * The credentials of node `node`'s agent, made as a kubelet makes the tokens it projects
 * into the agent's pod (deploy/agent.yaml): a Pod of the agent ServiceAccount bound to the
 * node stands for the agent (the agent runs in the caller's process; the pod's container
 * only sleeps, so that a process kubelet has something to run), and the node itself, with
 * its own credentials, asks for tokens bound to that pod: one for the API server, one for
 * TRANSFER_AUDIENCE. NodeRestriction lets a node do that only for pods on it; the API
 * server writes the pod's node into each token and names it as userInfo.extra
 * `authentication.kubernetes.io/node-name`, which deploy/agent-admission.yaml and the
 * transfer servers hold the agent to. The tokens die with the pod. Files go in `dir`.
 */
export async function agentCredentials(
  cluster: LocalCluster,
  node: string,
  dir: string,
): Promise<AgentCredentials> {
  const pod = await agentPod(cluster, node);
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
  const apiToken = await podBoundToken(nodeCore, pod, []);
  const transferTokenFile = join(dir, `fdckpt-agent-${node}.transfer-token`);
  writeFileSync(transferTokenFile, await podBoundToken(nodeCore, pod, [TRANSFER_AUDIENCE]), { mode: 0o600 });
  return {
    kubeconfig: cluster.tokenKubeconfig(
      `${OPERATOR_NAMESPACE}:${AGENT_SERVICE_ACCOUNT}@${node}`,
      apiToken,
      OPERATOR_NAMESPACE,
      join(dir, `fdckpt-agent-${node}.kubeconfig`),
    ),
    transferTokenFile,
  };
}

/** The pod standing for node `node`'s agent, made if it is not there yet. */
async function agentPod(cluster: LocalCluster, node: string): Promise<V1Pod> {
  const admin = new KubeConfig();
  admin.loadFromFile(cluster.adminKubeconfig);
  const core = admin.makeApiClient(CoreV1Api);
  const name = agentPodName(node);
  const namespace = OPERATOR_NAMESPACE;
  try {
    return await core.createNamespacedPod({
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
          containers: [
            {
              name: 'identity',
              image: 'local',
              command: ['sleep', 'infinity'],
              volumeMounts: [{ name: 'transfer-token', mountPath: '/var/run/secrets/fdckpt.io/transfer' }],
            },
          ],
          // As deploy/agent.yaml: a node may ask for a token of an audience only when a pod
          // of it projects one (NodeRestriction, ServiceAccountNodeAudienceRestriction).
          volumes: [
            {
              name: 'transfer-token',
              projected: {
                sources: [
                  {
                    serviceAccountToken: {
                      audience: TRANSFER_AUDIENCE,
                      expirationSeconds: 3600,
                      path: 'token',
                    },
                  },
                ],
              },
            },
          ],
        },
      },
    });
  } catch (e) {
    if (errCode(e) !== 409) throw e;
    return core.readNamespacedPod({ name, namespace });
  }
}

/** A token of the agent ServiceAccount bound to `pod`, asked for by the pod's node (`nodeCore`); [] is the API server's audience. */
async function podBoundToken(nodeCore: CoreV1Api, pod: V1Pod, audiences: string[]): Promise<string> {
  const name = pod.metadata?.name ?? '';
  const request = {
    name: AGENT_SERVICE_ACCOUNT,
    namespace: OPERATOR_NAMESPACE,
    body: {
      spec: {
        audiences,
        expirationSeconds: 24 * 3600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name, uid: pod.metadata?.uid },
      },
    },
  };
  // The Node authorizer learns of the new pod from its informer, a moment after the create.
  for (let i = 0; ; i++) {
    try {
      const token = (await nodeCore.createNamespacedServiceAccountToken(request)).status?.token;
      if (!token)
        throw new Error(`TokenRequest for the agent pod ${OPERATOR_NAMESPACE}/${name} returned no token`);
      return token;
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
    agent: (node) => agentCredentials(cluster, node, dir),
  };
}
