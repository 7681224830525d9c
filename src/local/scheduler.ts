/**
 * A minimal scheduler for the local control plane: binds each pending pod that names no
 * node (and asks for the default scheduler) to a local node, round robin, through the
 * pods/binding subresource as kube-scheduler does. It honours what a drain and a
 * cordon need — Ready, not unschedulable — and `nodeSelector`; no resources, affinity
 * or taints. Pods that fit nowhere are retried every second.
 */
import { recordPodEvent } from './events.js';
import {
  CoreV1Api,
  ListWatch,
  Watch,
  type KubeConfig,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';

/** A running scheduler. */
export interface LocalScheduler {
  stop(): Promise<void>;
}

/** Whether a pod may go to a node. */
export function fits(pod: V1Pod, node: V1Node): boolean {
  if (node.spec?.unschedulable) return false;
  if (node.status?.conditions?.find((c) => c.type === 'Ready')?.status !== 'True') return false;
  const labels = node.metadata?.labels ?? {};
  return Object.entries(pod.spec?.nodeSelector ?? {}).every(([k, v]) => labels[k] === v);
}

/** Starts binding unscheduled pods to the nodes in `nodes` (names of local nodes). */
export async function startScheduler(
  kc: KubeConfig,
  nodes: string[],
  log?: (l: string) => void,
): Promise<LocalScheduler> {
  const core = kc.makeApiClient(CoreV1Api);
  let next = 0;
  const bind = async (pod: V1Pod): Promise<void> => {
    const m = pod.metadata;
    if (!m?.name || !m.namespace || pod.spec?.nodeName || m.deletionTimestamp) return;
    if ((pod.spec?.schedulerName ?? 'default-scheduler') !== 'default-scheduler') return;
    const all = (await core.listNode()).items.filter((n) => nodes.includes(n.metadata?.name ?? ''));
    const fit = all.filter((n) => fits(pod, n));
    if (fit.length === 0) return;
    const node = fit[next++ % fit.length]!.metadata!.name!;
    await core.createNamespacedPodBinding({
      name: m.name,
      namespace: m.namespace,
      body: {
        metadata: { name: m.name, namespace: m.namespace },
        target: { apiVersion: 'v1', kind: 'Node', name: node },
      },
    });
    log?.(`scheduler: bound ${m.namespace}/${m.name} to ${node}`);
    await recordPodEvent(
      core,
      pod,
      'default-scheduler',
      undefined,
      'Normal',
      'Scheduled',
      `Successfully assigned ${m.namespace}/${m.name} to ${node}`,
      log,
    );
  };
  const lw = new ListWatch<V1Pod>(
    '/api/v1/pods',
    new Watch(kc),
    () => core.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=' }),
    false,
    undefined,
    'spec.nodeName=',
  );
  const onPod = (p: V1Pod): void => void bind(p).catch((e: unknown) => log?.(`scheduler: ${String(e)}`));
  lw.on('add', onPod);
  lw.on('update', onPod);
  await lw.start();
  const retry = setInterval(() => lw.list().forEach(onPod), 1000);
  return {
    stop: async () => {
      clearInterval(retry);
      await lw.stop();
    },
  };
}
