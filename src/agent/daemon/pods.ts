/** Reading the pod a piece of work targets, as the engine needs it. */
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { isNotFound } from '../../kube/errors.js';
import type { PodTarget } from './engine.js';

/** Why a pod cannot be acted on; becomes a condition reason. */
export class PodProblem extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The pod with its running containers, restricted to `only` when given.
 * Throws PodProblem when the pod is gone, replaced (another UID), or a wanted
 * container is not running.
 */
export async function podTarget(
  core: CoreV1Api,
  namespace: string,
  name: string,
  expectUid: string | undefined,
  only: readonly string[] = [],
): Promise<PodTarget> {
  let pod: V1Pod;
  try {
    pod = await core.readNamespacedPod({ name, namespace });
  } catch (err) {
    if (isNotFound(err)) throw new PodProblem('PodGone', `pod ${namespace}/${name} no longer exists`);
    throw err;
  }
  const uid = pod.metadata?.uid ?? '';
  if (expectUid && uid !== expectUid) {
    throw new PodProblem(
      'PodReplaced',
      `pod ${namespace}/${name} was replaced (UID ${uid}, expected ${expectUid})`,
    );
  }
  const wanted = only.length > 0 ? only : (pod.spec?.containers ?? []).map((c) => c.name);
  const statuses = new Map((pod.status?.containerStatuses ?? []).map((s) => [s.name, s]));
  const containers = wanted.map((c) => {
    const s = statuses.get(c);
    if (!s?.containerID || !s.state?.running) {
      throw new PodProblem(
        'ContainerNotRunning',
        `container ${c} of pod ${namespace}/${name} is not running`,
      );
    }
    return { name: c, containerID: s.containerID };
  });
  return { namespace, name, uid, qosClass: pod.status?.qosClass, containers };
}

/**
 * After a capture failed: was it because the pod went away? A pod deleted
 * mid-capture makes the engine fail on whatever syscall met the vanished
 * process first (`kcmp(…): EBADF`); the reason the user needs is PodGone.
 */
export async function podGoneSince(core: CoreV1Api, target: PodTarget): Promise<PodProblem | undefined> {
  const what = `pod ${target.namespace}/${target.name}`;
  try {
    const pod = await core.readNamespacedPod({ name: target.name, namespace: target.namespace });
    if (pod.metadata?.uid !== target.uid)
      return new PodProblem('PodGone', `${what} was deleted during capture (replaced)`);
    if (pod.metadata?.deletionTimestamp)
      return new PodProblem('PodGone', `${what} is being deleted: it went away during capture`);
    return undefined;
  } catch (err) {
    if (isNotFound(err)) return new PodProblem('PodGone', `${what} was deleted during capture`);
    // Cannot tell: the capture's own error stands.
    return undefined;
  }
}
