/**
 * The narrow interface between the agent daemon (Kubernetes side) and the
 * engine (capture, leak detection, image, replay; no Kubernetes). The daemon
 * decides what to do from the custom resources and reports the outcome; the
 * engine does it on this node. engine-adapter.ts implements it over the
 * engine modules.
 */
import type { ImageBinding } from '../model.js';
import type {
  ContainerCounts,
  FdFailure,
  FdProblemReport,
  Leak,
  LeakPolicy,
  PolicyRule,
  RestoreFds,
} from '../../api/index.js';

/** A pod as the daemon found it in the API: enough for the engine to find its cgroups. */
export interface PodTarget {
  namespace: string;
  name: string;
  uid: string;
  /** QoS class from the pod status (the cgroup path depends on it). */
  qosClass?: string;
  /** Containers to act on, with their runtime ids (`containerd://<64 hex>`). */
  containers: { name: string; containerID: string }[];
}

export interface CheckpointPodRequest {
  pod: PodTarget;
  leakPolicy: LeakPolicy;
  afterCapture: 'LeaveRunning' | 'Stop';
  ignore: { types: string[]; paths: string[] };
  dryRun: boolean;
  /** Where to write the image (absent for a dry run). */
  imagePath?: string;
  /** Written into the image header: the Checkpoint it belongs to. */
  binding?: ImageBinding;
}

export interface CheckpointPodOutcome {
  containers: ContainerCounts[];
  /** False when leak detection did not run (leakPolicy Ignore). */
  leaksChecked: boolean;
  leaks: Leak[];
  /** fds that make the checkpoint unrestorable (and were not ignored). */
  problems: FdProblemReport[];
  /** The image written; absent for a dry run, or when leaks/problems forbid one. */
  image?: { path: string; size: number; sha256: string };
  /** frozenAt: when the freeze was asked for (epoch ms), for a migration's downtime. */
  durations: { freezeMs: number; captureMs: number; frozenAt?: number };
}

export interface RestoreIntoRequest {
  /** The target pod; its containers run fdckpt-hold waiting for the agent. */
  pod: PodTarget;
  imagePath: string;
  /** Per container of the target: the captured pid whose table it gets. */
  sourcePids: Record<string, number>;
  /** Expected digest of the image (from the Checkpoint status). */
  sha256: string;
  /**
   * The Checkpoint being restored, from its metadata and the controller's
   * record (never from status): the image header must name exactly it.
   */
  binding: ImageBinding;
  fds: RestoreFds;
  /** Socket handoff (the Restore's listenFds). */
  listenFds?: boolean;
  /** The replay engine's per-fd policy, as the Restore spec gives it. */
  policy: { rules: PolicyRule[] };
  /** The target pod is not the captured one (RestorePolicy.newContainer). */
  newContainer?: boolean;
}

export interface RestoreIntoOutcome {
  fdsReplayed: number;
  failures: FdFailure[];
  /** replayedAt: when the program was let go with its table (epoch ms). */
  durations: { replayMs: number; replayedAt?: number };
}

/**
 * The target is not ready yet (its launcher has not started waiting): try again
 * soon. Every other error is final for this piece of work.
 */
export class NotReadyError extends Error {
  override readonly name = 'NotReadyError';
}

/** What a node can do. Every method throws an Error whose message says what failed and why. */
export interface NodeEngine {
  checkpointPod(request: CheckpointPodRequest): Promise<CheckpointPodOutcome>;
  restoreInto(request: RestoreIntoRequest): Promise<RestoreIntoOutcome>;
  /** Delete an image; deleting one that is already gone is not an error. */
  deleteImage(path: string): Promise<void>;
  /**
   * Whether the pod's cgroup on this node is frozen now (false when it is gone), for
   * the agent's frozen-pods gauge. Engines without cgroups leave it out.
   */
  isPodFrozen?(podUID: string): boolean;
}
