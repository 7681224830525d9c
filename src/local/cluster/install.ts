/**
 * Installing fdckpt into a local cluster the way a user installs it into theirs: the
 * built kubectl applies crds/ and deploy/'s namespace, RBAC and webhook configuration as
 * shipped, and the controller and agents then run with tokens of the ServiceAccounts
 * those files create — so the cluster, not the harness, says what they may do.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
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
  agent: string;
}

/**
 * Applies deploy/'s namespace, RBAC and webhook configuration (and crds/ unless told not
 * to), then mints a token for each of the operator's ServiceAccounts.
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
    agent: await cluster.serviceAccountKubeconfig(
      OPERATOR_NAMESPACE,
      AGENT_SERVICE_ACCOUNT,
      join(dir, 'fdckpt-agent.kubeconfig'),
    ),
  };
}
