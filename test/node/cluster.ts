/**
 * The real-node suites' cluster: the real control plane at the kubernetes Service's
 * address, two real nodes (kubelet + containerd + runc), fdckpt's images imported into
 * both, and deploy/ installed as shipped. One such cluster runs on a machine at a time
 * (startCluster's lock): a second suite waits for the first to stop.
 */
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { adminKubeConfig, startCluster, type LocalCluster } from '../../src/local/cluster/cluster.js';
import { startRealNode, type RealNode } from '../../src/local/node/node.js';
import { KUBECTL } from '../support/kubectl.js';
import { until } from '../support/until.js';
import { images, repo } from './support.js';

export interface RealCluster {
  cluster: LocalCluster;
  nodes: RealNode[];
  core: CoreV1Api;
  custom: CustomObjectsApi;
  kubeconfig: string;
  kubectl(...args: string[]): string;
  /** Waits for pod `name`'s first container to run. */
  running(name: string, timeoutMs?: number): Promise<V1Pod>;
  /** Creates a fdckpt.io object in namespace default. */
  create(plural: string, body: Record<string, unknown>): Promise<void>;
  /** Waits for `plural/name` Ready (or Succeeded) and returns its status; throws when it fails. */
  ready(plural: string, name: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** `kubectl apply -k` of deploy/ with only the image overridden; waits until it runs on both nodes. */
  installDeploy(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the cluster and nodes real-0 and real-1 under `work`, importing `extraImages` too. */
export async function startRealCluster(work: string, extraImages: string[] = []): Promise<RealCluster> {
  const dir = images();
  const cluster = await startCluster({ dataDir: join(work, 'cluster'), serviceAddress: true });
  const nodes: RealNode[] = [];
  const core = adminKubeConfig(cluster).makeApiClient(CoreV1Api);
  const custom = adminKubeConfig(cluster).makeApiClient(CustomObjectsApi);
  const kubeconfig = cluster.adminKubeconfig;
  const stop = async (): Promise<void> => {
    for (const n of nodes.reverse()) await n.stop().catch(() => undefined);
    await cluster.stop();
  };
  try {
    for (const index of [0, 1]) {
      nodes.push(
        await startRealNode({
          name: `real-${index}`,
          index,
          dir: join(work, `n${index}`),
          cluster,
          images: [join(dir, 'pause.tar'), join(dir, 'fdckpt.tar'), ...extraImages],
          core,
        }),
      );
    }
  } catch (e) {
    await stop();
    throw e;
  }

  const kubectl = (...args: string[]): string => {
    try {
      return execFileSync(KUBECTL, ['--kubeconfig', kubeconfig, ...args], {
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (e) {
      throw new Error(`kubectl ${args.join(' ')}: ${(e as { stderr?: string }).stderr ?? String(e)}`);
    }
  };
  const ref = (plural: string) => ({ group: 'fdckpt.io', version: 'v1alpha1', namespace: 'default', plural });

  return {
    cluster,
    nodes,
    core,
    custom,
    kubeconfig,
    kubectl,
    stop,
    running: (name, timeoutMs = 90_000) =>
      until(
        `pod ${name} running`,
        async () => {
          const p = await core.readNamespacedPod({ name, namespace: 'default' });
          return p.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
        },
        timeoutMs,
      ),
    async create(plural, body) {
      await custom.createNamespacedCustomObject({
        ...ref(plural),
        body: { apiVersion: 'fdckpt.io/v1alpha1', ...body },
      });
    },
    ready: (plural, name, timeoutMs = 120_000) =>
      until(
        `${plural}/${name} done`,
        async () => {
          const o = (await custom.getNamespacedCustomObject({ ...ref(plural), name })) as {
            status?: { phase?: string };
          };
          const phase = o.status?.phase;
          if (phase === 'Failed') throw new Error(`${plural}/${name} Failed: ${JSON.stringify(o.status)}`);
          return phase === 'Ready' || phase === 'Succeeded' ? o.status : undefined;
        },
        timeoutMs,
      ),
    async installDeploy() {
      const overlay = join(work, 'overlay');
      mkdirSync(overlay, { recursive: true });
      writeFileSync(
        join(overlay, 'kustomization.yaml'),
        [
          'apiVersion: kustomize.config.k8s.io/v1beta1',
          'kind: Kustomization',
          'resources:',
          `  - ${relative(overlay, join(repo, 'deploy'))}`,
          'images:',
          '  - { name: fdckpt, newName: localhost/fdckpt, newTag: dev }',
          '',
        ].join('\n'),
      );
      kubectl('apply', '-k', overlay);
      const apps = adminKubeConfig(cluster).makeApiClient(AppsV1Api);
      await until(
        'controller Deployment available and agent DaemonSet ready on both nodes',
        async () => {
          const d = await apps.readNamespacedDeployment({
            name: 'fdckpt-controller',
            namespace: 'fdckpt-system',
          });
          const ds = await apps.readNamespacedDaemonSet({ name: 'fdckpt-agent', namespace: 'fdckpt-system' });
          return d.status?.availableReplicas === 2 && ds.status?.numberReady === 2 ? true : undefined;
        },
        180_000,
      );
    },
  };
}
