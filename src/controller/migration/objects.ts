/**
 * Idempotent create/read/delete for the objects a Migration owns: a retried
 * reconcile finds what the previous attempt created and goes on.
 */
import type { Checkpoint, Migration, Restore, RestoreTarget } from '../../api/index.js';
import {
  API_VERSION,
  CHECKPOINT,
  GROUP,
  MIGRATION_LABEL as MIGRATION_LABEL_KEY,
  RESTORE,
  VERSION,
} from '../../api/index.js';
import type { ResourceClient } from '../../kube/client.js';
import { ownedBy } from './placement.js';
import { httpStatus, isNotFound } from '../../kube/errors.js';

/** The object, or undefined when the API says 404. */
export async function readOrUndefined<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Delete; already gone is fine. */
export async function deleteIfPresent(del: () => Promise<unknown>): Promise<void> {
  try {
    await del();
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/**
 * Create; on 409 AlreadyExists read the existing object and accept it only if
 * this Migration owns it (a name clash with someone else's object is an error).
 */
export async function createOwned<
  T extends { metadata?: { ownerReferences?: { uid: string }[]; name?: string } },
>(create: () => Promise<T>, read: () => Promise<T>, mig: Migration): Promise<T> {
  try {
    return await create();
  } catch (err) {
    if (httpStatus(err) !== 409) throw err;
  }
  const existing = await read();
  if (!existing.metadata?.ownerReferences?.some((o) => o.uid === mig.metadata.uid)) {
    throw new Error(
      `${existing.metadata?.name ?? 'object'} exists and does not belong to migration ${mig.metadata.name ?? ''}`,
    );
  }
  return existing;
}

/** The Checkpoint of the source pod, named as the Migration; the pod stays frozen after capture. */
export async function createCheckpointFor(
  checkpoints: ResourceClient<Checkpoint>,
  mig: Migration,
  labels: Record<string, string>,
): Promise<void> {
  const ns = mig.metadata.namespace ?? '';
  const name = mig.metadata.name ?? '';
  await createOwned(
    () =>
      checkpoints.api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: CHECKPOINT.plural,
        body: {
          apiVersion: API_VERSION,
          kind: CHECKPOINT.kind,
          metadata: { name, namespace: ns, labels, ownerReferences: [ownedBy(mig)] },
          spec: {
            podName: mig.spec.podName,
            leakPolicy: mig.spec.leakPolicy ?? 'Fail',
            afterCapture: 'Stop',
          },
        },
      }) as Promise<Checkpoint>,
    () => checkpoints.get(ns, name),
    mig,
  );
}

/** The Restore of the Migration's Checkpoint into `target`, named as the Migration. */
export async function createRestoreFor(
  restores: ResourceClient<Restore>,
  mig: Migration,
  target: RestoreTarget,
): Promise<void> {
  const ns = mig.metadata.namespace ?? '';
  const name = mig.metadata.name ?? '';
  await createOwned(
    () =>
      restores.api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: RESTORE.plural,
        body: {
          apiVersion: API_VERSION,
          kind: RESTORE.kind,
          metadata: {
            name,
            namespace: ns,
            labels: { [MIGRATION_LABEL_KEY]: name },
            ownerReferences: [ownedBy(mig)],
          },
          spec: {
            checkpointName: name,
            target,
            ...(mig.spec.policy ? { policy: mig.spec.policy } : {}),
            fds: mig.spec.fds ?? 'Program',
            ...(mig.spec.listenFds ? { listenFds: true } : {}),
          },
        },
      }) as Promise<Restore>,
    () => restores.get(ns, name),
    mig,
  );
}
