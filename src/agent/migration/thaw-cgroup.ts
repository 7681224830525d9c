/** Thawing a pod's cgroup on this node (the engine part of a rollback; no Kubernetes). */
import { findPodCgroup, thaw } from '../cgroup/index.js';
import type { PodQos } from '../cgroup/pod.js';
import type { PodTarget } from '../daemon/engine.js';

function qosOf(pod: PodTarget): PodQos | undefined {
  const q = pod.qosClass?.toLowerCase();
  return q === 'guaranteed' || q === 'burstable' || q === 'besteffort' ? q : undefined;
}

/** Thaw the pod's cgroup; thawing a pod that is not frozen does nothing. */
export function thawPodCgroup(pod: PodTarget): Promise<void> {
  // Only the pod cgroup: capture froze that one, and children follow their parent.
  const cg = findPodCgroup(pod.uid, [], { qos: qosOf(pod) });
  thaw(cg.pod);
  return Promise.resolve();
}
