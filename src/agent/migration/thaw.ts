/**
 * The source side of a migration rollback: a Checkpoint taken with
 * afterCapture Stop leaves the pod frozen; when the controller annotates the
 * Checkpoint with fdckpt.io/thaw, this node's agent thaws the pod and answers
 * with the Thawed condition in the Checkpoint's status. Level-based and idempotent: thawing a running pod
 * does nothing, and an agent that restarts finds the request again.
 */
import type { Checkpoint } from '../../api/index.js';
import { CHECKPOINT, THAW_ANNOTATION, THAWED_CONDITION, findCondition } from '../../api/index.js';
import type { EventRecorder } from '../../kube/events.js';
import type { ResourceClient } from '../../kube/client.js';
import type { Reconciler, Result } from '../../kube/reconciler.js';
import { splitKey } from '../../kube/informer.js';
import { updateStatus } from '../../kube/status.js';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { PodTarget } from '../daemon/engine.js';
import { PodProblem, podTarget } from '../daemon/pods.js';

export interface ThawDeps {
  nodeName: string;
  core: CoreV1Api;
  events: EventRecorder;
  /** Thaw the pod's cgroup (the engine's part; thawPodCgroup on a node). */
  thaw: (pod: PodTarget) => Promise<void>;
  now?: () => Date;
}

export class AgentThawReconciler implements Reconciler {
  readonly kind = `${CHECKPOINT.kind}Thaw`;

  constructor(
    private readonly checkpoints: ResourceClient<Checkpoint>,
    private readonly deps: ThawDeps,
  ) {}

  async reconcile(key: string): Promise<Result> {
    const { namespace, name } = splitKey(key);
    const ckpt = await this.checkpoints.read(namespace, name);
    if (!ckpt) return {}; // gone: nothing to reconcile
    if (!ckpt.metadata.annotations?.[THAW_ANNOTATION]) return {};
    if (findCondition(ckpt.status?.conditions, THAWED_CONDITION)) return {};
    if (ckpt.status?.nodeName !== this.deps.nodeName) return {};
    let reason = 'Thawed';
    let message = `thawed pod ${ckpt.spec.podName} on ${this.deps.nodeName}`;
    try {
      const pod = await podTarget(
        this.deps.core,
        namespace,
        ckpt.spec.podName,
        ckpt.status.podUID,
        ckpt.spec.containers,
      );
      await this.deps.thaw(pod);
      this.deps.events.record(ckpt, 'Normal', 'Thawed', message);
    } catch (err) {
      // A pod that is gone or replaced has nothing left to thaw: say so and stop asking.
      if (!(err instanceof PodProblem)) throw err;
      reason = 'NothingToThaw';
      message = err.message;
    }
    await updateStatus(
      this.checkpoints,
      namespace,
      name,
      (d) => d.setCondition({ type: THAWED_CONDITION, status: 'True', reason, message }),
      { generation: ckpt.metadata.generation, now: () => this.deps.now?.() ?? new Date() },
    );
    return {};
  }
}
