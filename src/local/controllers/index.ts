/**
 * The controllers of the local control plane (what kube-controller-manager runs on a
 * cluster, the few the harness needs): Deployments, ReplicaSets and the sweep of
 * dependents whose owners are gone. Clients of the API through a kubeconfig, like
 * the scheduler and the kubelets.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { startDeploymentController } from './deployment.js';
import { startGarbageCollector } from './garbage-collector.js';
import { startReplicaSetController } from './replicaset.js';

/** Starts every local controller; stop() stops them in reverse order. */
export async function startLocalControllers(
  kc: KubeConfig,
  log?: (line: string) => void,
): Promise<{ stop(): Promise<void> }> {
  const started: { stop(): Promise<void> }[] = [];
  const stop = async (): Promise<void> => {
    for (const c of started.reverse()) await c.stop().catch(() => undefined);
  };
  try {
    started.push(await startGarbageCollector(kc, log));
    started.push(await startReplicaSetController(kc, log));
    started.push(await startDeploymentController(kc, log));
  } catch (e) {
    await stop();
    throw e;
  }
  return { stop };
}
