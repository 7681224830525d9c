/**
 * Names shared by the controller, the agent, the CRDs and kubectl: one place,
 * so that a rename is one edit and a typo is a compile error.
 */

export const GROUP = 'fdckpt.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** The identity of one custom resource kind, as client-node's custom-object calls need it. */
export interface KindInfo {
  kind: string;
  plural: string;
  singular: string;
  shortName: string;
}

export const CHECKPOINT: KindInfo = {
  kind: 'Checkpoint',
  plural: 'checkpoints',
  singular: 'checkpoint',
  shortName: 'fdckpt',
};
export const RESTORE: KindInfo = {
  kind: 'Restore',
  plural: 'restores',
  singular: 'restore',
  shortName: 'fdrst',
};

/** Category of every kind: `kubectl get fdckpt-all` (`fdckpt` is the Checkpoint short name; one word cannot be both). */
export const CATEGORY = 'fdckpt-all';

/**
 * The controller adds this finalizer to every Checkpoint: the image on the node
 * must be deleted (by that node's agent) before the object goes away.
 */
export const IMAGE_FINALIZER = 'fdckpt.io/image';

/**
 * Label the controller puts on work it assigns to a node. Custom resources
 * support no field selector on status, so the agent selects its work by label.
 */
export const NODE_LABEL = 'fdckpt.io/node';

/**
 * On a Checkpoint, written by the controller when it schedules the capture
 * (agents cannot write metadata): the source pod's uid and each container's
 * command and args from its spec, as JSON (SourcePodRecord). A restored pod's
 * command comes from here, never from the agent-written status argv.
 */
export const SOURCE_POD_ANNOTATION = 'fdckpt.io/source-pod';

/** The value of SOURCE_POD_ANNOTATION. */
export interface SourcePodRecord {
  uid: string;
  containers: { name: string; command: string[]; args: string[] }[];
}

/** Label on a pod created by a Restore (the owner reference says the same, this one is selectable). */
export const RESTORE_LABEL = 'fdckpt.io/restore';

/** Names used in restored pods for the launcher. */
export const LAUNCHER = {
  volume: 'fdckpt-launcher',
  mountPath: '/.fdckpt',
  binary: 'fdckpt-hold',
  initContainer: 'fdckpt-install-launcher',
  /** Where the agent image keeps the static launcher. */
  sourcePath: '/usr/local/lib/fdckpt/fdckpt-hold',
} as const;

/** Condition types, by owner (one writer per field). */
export const CONDITIONS = {
  /** controller: a node was chosen and the agent there was asked. */
  Scheduled: 'Scheduled',
  /** agent: the tables were captured (and the image written, unless a dry run). */
  Captured: 'Captured',
  /** agent: nothing outside the pod references an object inside it, or the other way round. */
  LeakFree: 'LeakFree',
  /** agent (Restore): the table was replayed into the target process. */
  Replayed: 'Replayed',
  /** controller: the summary; the work is done and usable. */
  Ready: 'Ready',
  /** controller: the spec cannot be acted on until it is edited. */
  InvalidSpec: 'InvalidSpec',
  /**
   * controller: the verdict of the capture (a dry run's answer): False names the
   * fds and leaks that stop a consistent checkpoint. Ready only says the work ended.
   */
  Checkpointable: 'Checkpointable',
  /**
   * controller: the work ended and will not be retried (phase Failed), with
   * Ready's reason: what `kubectl wait --for=condition=Failed` waits on.
   */
  Failed: 'Failed',
} as const;
