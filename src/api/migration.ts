/**
 * The Migration kind (fdckpt.io/v1alpha1, short name fdmig): move a running
 * pod to another node through one Checkpoint and one Restore it owns. Names,
 * shapes and validation shared by the controller, the agents and the CRD.
 */
import type { Condition } from './conditions.js';
import type { KindInfo } from './names.js';
import type { LeakPolicy, ObjectMeta, PolicyRule, RestoreFds } from './types.js';
import { LEAK_POLICIES, POLICY_ACTIONS, RESTORE_FDS } from './types.js';
import { checkPolicyBounds } from './validate.js';

export const MIGRATION: KindInfo = {
  kind: 'Migration',
  plural: 'migrations',
  singular: 'migration',
  shortName: 'fdmig',
};

/** Pod annotation: migrate this pod automatically when its node is cordoned or tainted NoExecute. */
export const MIGRATE_ON_DRAIN = 'fdckpt.io/migrate-on-drain';

/** Label on what a Migration creates (Checkpoint, Restore, pods): the Migration's name. */
export const MIGRATION_LABEL = 'fdckpt.io/migration';

/**
 * Node annotation written by each agent: the base URL of its image transfer
 * server, where other nodes' agents fetch images captured on this node.
 */
export const TRANSFER_ENDPOINT_ANNOTATION = 'fdckpt.io/transfer-endpoint';

/**
 * Node annotation written by each agent next to its endpoint: the SHA-256
 * (hex) of its transfer server's self-signed certificate. A fetching agent
 * accepts only that certificate (pinning; the API server is the trust root).
 */
export const TRANSFER_CERT_ANNOTATION = 'fdckpt.io/transfer-cert-sha256';

/** The operator's namespace when nothing says otherwise (deploy/namespace.yaml). */
export const DEFAULT_OPERATOR_NAMESPACE = 'fdckpt-system';

/**
 * The audience of the token an agent presents to another node's transfer server: the
 * kubelet projects a token for it into the agent's pod (deploy/agent.yaml), bound to the
 * pod and so to its node. A token for this audience opens no API; a token for the API
 * server's audience opens no transfer, so neither side can replay what the other shows.
 */
export const TRANSFER_AUDIENCE = 'fdckpt.io/transfer';

/** Where deploy/agent.yaml mounts that token (the kubelet refreshes the file). */
export const DEFAULT_TRANSFER_TOKEN_FILE = '/var/run/secrets/fdckpt.io/transfer/token';

/**
 * Checkpoint annotation set by the controller when a migration rolls back:
 * the source node's agent thaws the pod that was left frozen after capture,
 * and answers with the THAWED_CONDITION in the Checkpoint status (agent-owned).
 */
export const THAW_ANNOTATION = 'fdckpt.io/thaw';
export const THAWED_CONDITION = 'Thawed';

export interface MigrationSpec {
  /** The pod to move, in the Migration's namespace. */
  podName: string;
  /** Where to; absent: any other Ready, schedulable, untainted node. */
  targetNode?: string;
  /** The Checkpoint's leak policy. Default Fail. */
  leakPolicy?: LeakPolicy;
  /** The Restore's per-fd replay policy. */
  policy?: { rules?: PolicyRule[] };
  fds?: RestoreFds;
  /**
   * The Restore's socket handoff: the saved listening sockets go to fds 3… of the
   * replacement with LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES set (its launcher gets
   * --listen-fds, in a new pod and in an owner's replacement alike).
   */
  listenFds?: boolean;
  /** Roll back when the target has not replayed this long after capture. Default 300. */
  timeoutSeconds?: number;
}

export type MigrationPhase =
  | 'Pending'
  | 'Checkpointing'
  /** Owner-managed pods: the source was deleted; waiting for the owner's replacement. */
  | 'Replacing'
  | 'Restoring'
  | 'Finishing'
  | 'RollingBack'
  | 'Succeeded'
  | 'Failed';

/** Where the time went, in milliseconds. */
export interface MigrationTimings {
  /** The pod frozen during capture (from the Checkpoint). */
  freezeMs?: number;
  captureMs?: number;
  /** Image moved to the target node (from the Restore; 0 on the same node). */
  transferMs?: number;
  /** Table replayed into the target (from the Restore). */
  restoreMs?: number;
  /**
   * The workload did not run: from the freeze (source agent's clock) to the
   * program let go with its table (target agent's clock). Without those
   * timestamps: freezeMs plus what the controller saw between Captured and
   * Replayed, a lower bound.
   */
  downtimeMs?: number;
  /** From the Migration's start to Succeeded or Failed. */
  totalMs?: number;
}

export interface MigrationStatus {
  phase?: MigrationPhase;
  observedGeneration?: number;
  conditions?: Condition[];
  sourceNode?: string;
  sourcePod?: string;
  sourcePodUID?: string;
  /** The pod has a controlling owner that recreates it (ReplicaSet, StatefulSet, Job). */
  ownerManaged?: boolean;
  /** The controlling owner's UID: the webhook recognises the replacement by it. */
  ownerUID?: string;
  ownerKind?: string;
  targetNode?: string;
  targetPod?: string;
  checkpointName?: string;
  restoreName?: string;
  /** Millisecond timestamps the controller saw (metav1.Time has whole seconds only). */
  startedAt?: string;
  /** From the source agent: when the freeze was asked for. */
  frozenAt?: string;
  capturedAt?: string;
  restoredAt?: string;
  rollbackReason?: string;
  timings?: MigrationTimings;
}

export interface Migration {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: MigrationSpec;
  status?: MigrationStatus;
}

/** Condition types of a Migration (all owned by the controller). */
export const MIGRATION_CONDITIONS = {
  Checkpointed: 'Checkpointed',
  Restored: 'Restored',
  SourceDeleted: 'SourceDeleted',
  RolledBack: 'RolledBack',
  Ready: 'Ready',
  InvalidSpec: 'InvalidSpec',
  /** The migration ended in phase Failed (after its rollback, if any), with Ready's reason. */
  Failed: 'Failed',
} as const;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Every problem with a Migration spec, each naming the field; empty when valid. */
export function validateMigrationSpec(spec: MigrationSpec | undefined): string[] {
  if (!spec) return ['spec: required'];
  const errors: string[] = [];
  if (typeof spec.podName !== 'string' || !DNS_LABEL.test(spec.podName)) {
    errors.push(`spec.podName: ${JSON.stringify(spec.podName)} is not a pod name`);
  }
  if (spec.targetNode !== undefined && !DNS_LABEL.test(spec.targetNode)) {
    errors.push(`spec.targetNode: ${JSON.stringify(spec.targetNode)} is not a node name`);
  }
  if (spec.leakPolicy !== undefined && !LEAK_POLICIES.includes(spec.leakPolicy)) {
    errors.push(
      `spec.leakPolicy: ${JSON.stringify(spec.leakPolicy)} is not one of ${LEAK_POLICIES.join(', ')}`,
    );
  }
  if (spec.fds !== undefined && !RESTORE_FDS.includes(spec.fds)) {
    errors.push(`spec.fds: ${JSON.stringify(spec.fds)} is not one of ${RESTORE_FDS.join(', ')}`);
  }
  if (spec.listenFds !== undefined && typeof spec.listenFds !== 'boolean')
    errors.push('spec.listenFds: must be true or false');
  checkPolicyBounds(errors, spec.policy?.rules);
  (spec.policy?.rules ?? []).forEach((rule, i) => {
    if (!POLICY_ACTIONS.includes(rule.action)) {
      errors.push(
        `spec.policy.rules[${i}].action: ${JSON.stringify(rule.action)} is not one of ${POLICY_ACTIONS.join(', ')}`,
      );
    }
  });
  if (
    spec.timeoutSeconds !== undefined &&
    (!Number.isInteger(spec.timeoutSeconds) || spec.timeoutSeconds < 1)
  ) {
    errors.push(`spec.timeoutSeconds: ${String(spec.timeoutSeconds)} is not a positive integer`);
  }
  return errors;
}
