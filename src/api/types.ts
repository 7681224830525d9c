/**
 * TypeScript shapes of the fdckpt custom resources (fdckpt.io/v1alpha1). The
 * CRDs in crds/ are the schema the API server enforces; these types mirror them
 * and are kept in step by test/controller/crds.test.ts.
 */
import type { Condition } from './conditions.js';

/** The part of ObjectMeta fdckpt reads and writes. */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export type LeakPolicy = 'Fail' | 'Warn' | 'Ignore';
export type AfterCapture = 'LeaveRunning' | 'Stop';
export const LEAK_POLICIES: readonly LeakPolicy[] = ['Fail', 'Warn', 'Ignore'];
export const AFTER_CAPTURE: readonly AfterCapture[] = ['LeaveRunning', 'Stop'];

export interface CheckpointSpec {
  /** The pod to checkpoint, in the Checkpoint's namespace. */
  podName: string;
  /** Containers to capture; empty or absent means all of them. */
  containers?: string[];
  /** What a leak across the pod boundary does to the result. Default Fail. */
  leakPolicy?: LeakPolicy;
  /** What happens to the pod after capture. Default LeaveRunning. */
  afterCapture?: AfterCapture;
  /** Files recorded but never restored. */
  ignore?: { types?: string[]; paths?: string[] };
  /** Capture and report (leaks, unsupported fds) without writing an image. */
  dryRun?: boolean;
  /** Delete the Checkpoint (and its image) this long after it finished. */
  ttlSecondsAfterFinished?: number;
}

export type CheckpointPhase = 'Pending' | 'Scheduled' | 'Ready' | 'Failed' | 'Deleting';

/** What the agent saw of one container. */
export interface ContainerCounts {
  name: string;
  processes: number;
  fds: number;
  /** The container's main process (its first): the one whose table a Restore replays. */
  pid?: number;
  /** argv of that process: what a restored pod runs behind the launcher. */
  argv?: string[];
}

/** The pod of a leak's holder: its UID, and its namespace and name when the agent knew them. */
export interface LeakPod {
  uid: string;
  namespace?: string;
  name?: string;
}

/** One end of a leaked reference, as the engine reported it. */
export interface LeakHolder {
  pid: number;
  comm: string;
  /** Absent when the reference is not an fd (a whole fd table, a mapping). */
  fd?: number;
  /** The holder's cgroup (outside holders): names a host service. */
  cgroup?: string;
  /** The holder's pod; absent for a process of the host. */
  pod?: LeakPod;
}

export interface Leak {
  /** The kind of object shared across the boundary (pipe, socket, regular, ...). */
  type: string;
  /** The object, as /proc shows it (`pipe:[4242]`, a path, ...). */
  object: string;
  /** Why the edge crosses the boundary (`other end of pipe`, `same open file`, ...; docs/leaks.md). */
  via?: string;
  inside: LeakHolder;
  outside: LeakHolder;
}

/** Where a holder lives, for people: `NS/NAME` of its pod (its UID if unnamed), or `host` (its cgroup is in the data). */
export function holderPlace(h: LeakHolder): string {
  if (h.pod) return h.pod.namespace && h.pod.name ? `${h.pod.namespace}/${h.pod.name}` : h.pod.uid;
  return 'host';
}

/** A bounded list and the true total: a pod can have thousands of leaks, etcd cannot store them. */
export interface BoundedList<T> {
  total: number;
  items: T[];
}

export interface FdProblemReport {
  kind: string;
  pid: number;
  fd: number;
  message: string;
}

export interface ImageRef {
  node: string;
  path: string;
  size: number;
  sha256: string;
}

export interface CheckpointStatus {
  // --- controller ---
  phase?: CheckpointPhase;
  observedGeneration?: number;
  nodeName?: string;
  podUID?: string;
  // --- controller (Scheduled, Ready, InvalidSpec) and agent (Captured, LeakFree) ---
  conditions?: Condition[];
  // --- agent ---
  containers?: ContainerCounts[];
  totalProcesses?: number;
  totalFds?: number;
  leaks?: BoundedList<Leak>;
  problems?: BoundedList<FdProblemReport>;
  image?: ImageRef;
  /** frozenAt: when the freeze was asked for (ISO, ms precision; metav1.Time has seconds only). */
  durations?: { freezeMs?: number; captureMs?: number; frozenAt?: string };
}

export interface Checkpoint {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: CheckpointSpec;
  status?: CheckpointStatus;
}

/**
 * Which fds a Restore replays (docs/replay.md, "What is replayed"): Program (the
 * default) what a freshly exec'd program can use — the new container keeps its own
 * fds 0–2, close-on-exec fds and listening sockets are left closed; Inherited the fds
 * without close-on-exec; All the whole table.
 */
export type RestoreFds = 'Program' | 'Inherited' | 'All';
export const RESTORE_FDS: readonly RestoreFds[] = ['Program', 'Inherited', 'All'];

/** What replay does with the fds a rule matches (the replay engine's policy actions). */
export type PolicyAction = 'fail' | 'skip' | 'devnull' | 'remap' | 'inherit';
export const POLICY_ACTIONS: readonly PolicyAction[] = ['fail', 'skip', 'devnull', 'remap', 'inherit'];

/**
 * One rule of the replay engine's per-fd restore policy: matched by fd number,
 * path glob and/or type (all given must match); the first matching rule wins;
 * an fd no rule matches is restored, and a failure fails the restore.
 */
export interface PolicyRule {
  fd?: number;
  path?: string;
  type?: string;
  /** Matches listening sockets (true) or every other fd (false). */
  listening?: boolean;
  action: PolicyAction;
  /** remap: saved path prefix replaced by `to`. */
  from?: string;
  to?: string;
  /** A regular file now shorter than the saved offset is accepted. */
  allowSizeChange?: boolean;
  /**
   * A path that now names another file (device and inode) than at capture is accepted.
   * Unset: false into the captured pod, true into another pod (docs/replay.md).
   */
  allowFileChange?: boolean;
}

export interface RestoreTarget {
  /** Replay into the launcher of this existing pod. */
  podName?: string;
  /** Create a pod from the checkpointed one, with the launcher injected. */
  newPod?: { name?: string; nodeName?: string };
}

export interface RestoreSpec {
  checkpointName: string;
  target: RestoreTarget;
  /** The replay engine's per-fd restore policy. */
  policy?: { rules?: PolicyRule[] };
  /** Which fds are replayed (see RestoreFds). Default Program. */
  fds?: RestoreFds;
  /**
   * Socket handoff: the saved listening sockets go to fds 3… with LISTEN_FDS,
   * LISTEN_PID and LISTEN_FDNAMES set (the launcher must run with --listen-fds; a new
   * pod gets it).
   */
  listenFds?: boolean;
}

export type RestorePhase = 'Pending' | 'Waiting' | 'Scheduled' | 'Ready' | 'Failed';

export interface FdFailure {
  container?: string;
  fd: number;
  path?: string;
  message: string;
}

export interface RestoreStatus {
  // --- controller ---
  phase?: RestorePhase;
  observedGeneration?: number;
  nodeName?: string;
  restoredPod?: string;
  conditions?: Condition[];
  // --- agent ---
  fdsReplayed?: number;
  failures?: BoundedList<FdFailure>;
  /** transferMs: fetching the image from another node (0 when it was local). */
  durations?: { replayMs?: number; transferMs?: number; replayedAt?: string };
  /** An image fetched from another node: bytes received (all attempts) and attempts made. */
  transfer?: { bytes: number; attempts: number };
}

export interface Restore {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: RestoreSpec;
  status?: RestoreStatus;
}

/** Most items kept in a bounded status list. */
export const STATUS_LIST_MAX = 50;

/** Keep the first `max` items and the true total. */
export function bounded<T>(items: readonly T[], max = STATUS_LIST_MAX): BoundedList<T> {
  return { total: items.length, items: items.slice(0, max) };
}
