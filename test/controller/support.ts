/**
 * Test harness for the reconcilers: a real etcd and kube-apiserver (src/local/cluster, no
 * controller-manager or scheduler: the tests play the nodes) with fdckpt's CRDs
 * installed, and client-node talking to it as cluster admin, exactly as it talks to any
 * cluster.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { ApiextensionsV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { V1CustomResourceDefinition, V1Pod } from '@kubernetes/client-node';
import { adminKubeConfig, startCluster, type LocalCluster } from '../../src/local/cluster/cluster.js';
import type { Clients } from '../../src/kube/client.js';
import { ResourceClient, makeClients } from '../../src/kube/client.js';
import type { Checkpoint, Restore } from '../../src/api/index.js';
import { CHECKPOINT, DEFAULT_OPERATOR_NAMESPACE, RESTORE, setCondition } from '../../src/api/index.js';
import type { Component, ControlPlaneInfo } from '../../src/local/controlplane.js';
import { EngineAdapter } from '../../src/agent/daemon/engine-adapter.js';
import { startAgent } from '../../src/agent/daemon/daemon.js';
import { loadKubeConfig } from '../../src/kube/client.js';
import { OPERATOR_NAMESPACE, installOperator } from '../../src/local/cluster/install.js';
import { startController } from '../../src/controller/manager.js';
import { silentLogger } from '../../src/kube/log.js';

export interface Harness extends Clients {
  cluster: LocalCluster;
  /** A cluster-admin KubeConfig. */
  kc: KubeConfig;
  checkpoints: ResourceClient<Checkpoint>;
  restores: ResourceClient<Restore>;
  close(): Promise<void>;
}

/** Create fdckpt's CRDs from crds/ and wait until the API server serves them. */
export async function installCrds(
  kc: KubeConfig,
  files = ['checkpoints.fdckpt.io.yaml', 'restores.fdckpt.io.yaml'],
): Promise<void> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  for (const file of files) {
    const body = yaml.load(
      readFileSync(new URL(`../../crds/${file}`, import.meta.url), 'utf8'),
    ) as V1CustomResourceDefinition;
    await ext.createCustomResourceDefinition({ body });
  }
  for (const file of files) {
    const name = file.replace(/\.yaml$/, '');
    for (let i = 0; ; i++) {
      const crd = await ext.readCustomResourceDefinition({ name });
      if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (i > 200) throw new Error(`CRD ${name} not Established after 10 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  // Established is not yet served: the API server answers 429 "storage is (re)initializing"
  // until its watch cache for the new resource is up.
  const custom = kc.makeApiClient(CustomObjectsApi);
  for (const file of files) {
    const plural = file.split('.')[0]!;
    for (let i = 0; ; i++) {
      try {
        await custom.listClusterCustomObject({ group: 'fdckpt.io', version: 'v1alpha1', plural });
        break;
      } catch (e) {
        if ((e as { code?: number }).code !== 429 || i > 200) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
}

export async function startHarness(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'fdckpt-harness-'));
  const cluster = await startCluster({ dataDir: dir, controllerManager: false, scheduler: false });
  const kc = adminKubeConfig(cluster);
  const clients = makeClients(kc);
  // No controller-manager: the default ServiceAccount its controller would make, which
  // pod admission requires.
  await clients.core.createNamespacedServiceAccount({
    namespace: 'default',
    body: { metadata: { name: 'default' } },
  });
  // The operator's namespace, where the controller keeps transfer Secrets.
  await clients.core.createNamespace({ body: { metadata: { name: DEFAULT_OPERATOR_NAMESPACE } } });
  await installCrds(kc);
  return {
    ...clients,
    cluster,
    kc,
    checkpoints: new ResourceClient<Checkpoint>(clients.custom, CHECKPOINT),
    restores: new ResourceClient<Restore>(clients.custom, RESTORE),
    close: async () => {
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Create a pod and give it a node and a phase, as a scheduler and kubelet would. */
export async function makePod(
  h: Harness,
  name: string,
  opts: { node?: string; phase?: string; containers?: string[]; namespace?: string } = {},
): Promise<V1Pod> {
  const namespace = opts.namespace ?? 'default';
  let pod = await h.core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, namespace, labels: { app: name } },
      spec: {
        nodeName: opts.node,
        containers: (opts.containers ?? ['app']).map((c) => ({
          name: c,
          image: 'busybox',
          command: ['sleep', '1000'],
        })),
      },
    },
  });
  if (opts.phase) {
    pod = await h.core.replaceNamespacedPodStatus({
      name,
      namespace,
      body: {
        ...pod,
        status: {
          phase: opts.phase,
          qosClass: 'BestEffort',
          containerStatuses:
            opts.phase === 'Running'
              ? (opts.containers ?? ['app']).map((c, i) => ({
                  name: c,
                  image: 'busybox',
                  imageID: '',
                  ready: true,
                  restartCount: 0,
                  containerID: `containerd://${String(i).repeat(64)}`,
                  state: { running: { startedAt: new Date() } },
                }))
              : undefined,
        },
      },
    });
  }
  return pod;
}

export async function createCheckpoint(
  h: Harness,
  name: string,
  spec: Checkpoint['spec'],
): Promise<Checkpoint> {
  return (await h.custom.createNamespacedCustomObject({
    group: 'fdckpt.io',
    version: 'v1alpha1',
    namespace: 'default',
    plural: 'checkpoints',
    body: {
      apiVersion: 'fdckpt.io/v1alpha1',
      kind: 'Checkpoint',
      metadata: { name, namespace: 'default' },
      spec,
    },
  })) as Checkpoint;
}

export async function createRestore(
  h: Harness,
  name: string,
  spec: Restore['spec'],
  labels?: Record<string, string>,
): Promise<Restore> {
  return (await h.custom.createNamespacedCustomObject({
    group: 'fdckpt.io',
    version: 'v1alpha1',
    namespace: 'default',
    plural: 'restores',
    body: {
      apiVersion: 'fdckpt.io/v1alpha1',
      kind: 'Restore',
      metadata: { name, namespace: 'default', ...(labels ? { labels } : {}) },
      spec,
    },
  })) as Restore;
}

/**
 * Plays the agent's part of a capture: marks Checkpoint `name` Captured and LeakFree and
 * writes `status` (containers, image, …) over its status, as the node's agent would.
 */
export async function agentReportsCaptured(
  h: Harness,
  name: string,
  status: Partial<NonNullable<Checkpoint['status']>>,
): Promise<void> {
  const c = await h.checkpoints.get('default', name);
  let conditions = setCondition(c.status?.conditions, {
    type: 'Captured',
    status: 'True',
    reason: 'Captured',
    message: 'ok',
  });
  conditions = setCondition(conditions, {
    type: 'LeakFree',
    status: 'True',
    reason: 'NoLeaks',
    message: 'none',
  });
  await h.checkpoints.replaceStatus({ ...c, status: { ...c.status, conditions, ...status } });
}

/** Reason of a condition, or undefined. */
export function reason(
  obj: { status?: { conditions?: { type: string; reason: string; status: string }[] } },
  type: string,
): string | undefined {
  const c = obj.status?.conditions?.find((x) => x.type === type);
  return c ? `${c.status}/${c.reason}` : undefined;
}

/** Options of startTestOperator. */
export interface TestOperatorOptions {
  /** The launcher restored pods run (the process kubelet ignores images). */
  launcher: string;
  /** Install the CRDs first (the e2e test applies them with kubectl instead). */
  installCrds?: boolean;
  /** The controller's leader Lease (deploy/'s RBAC allows it in the operator's namespace). */
  lease?: { identity: string };
}

/**
 * The operator for a one-node local control plane, quiet: the controller and the
 * node's agent with the real engine. Pass as startControlPlane's startOperator.
 */
export async function startTestOperator(
  info: ControlPlaneInfo,
  options: TestOperatorOptions,
): Promise<Component> {
  // deploy/'s RBAC as shipped; the controller and the agent run as their ServiceAccounts.
  const credentials = await installOperator(info.cluster, info.kubeconfigPath, {
    crds: options.installCrds ?? false,
  });
  const node = info.nodes[0]!;
  const controller = await startController({
    kc: loadKubeConfig(credentials.controller),
    log: silentLogger,
    port: 0,
    launcher: { image: 'unused', hostPath: options.launcher },
    ...(options.lease
      ? { lease: { namespace: OPERATOR_NAMESPACE, name: 'fdckpt-controller', ...options.lease } }
      : {}),
  });
  const agent = await startAgent({
    kc: loadKubeConfig((await credentials.agent(node.name)).kubeconfig),
    nodeName: node.name,
    dataDir: node.storageDir,
    engine: new EngineAdapter({ dataDir: node.storageDir }),
    log: silentLogger,
    port: 0,
  });
  return {
    stop: async () => {
      await agent.stop();
      await controller.stop();
    },
  };
}
