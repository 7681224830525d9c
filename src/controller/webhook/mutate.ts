/**
 * What the admission webhook does to a pod being created: if it is the
 * replacement that an owner (ReplicaSet, StatefulSet, Job) makes for a pod a
 * Migration just deleted, pin it to the Migration's target node, run its
 * captured containers behind the launcher, and label it for the Migration
 * (which then binds a Restore to it). Any other pod passes untouched.
 */
import type { V1Container, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import type { Checkpoint, Migration } from '../../api/index.js';
import { LAUNCHER, MIGRATION_LABEL, sourceRecord } from '../../api/index.js';
import type { LauncherOptions } from '../restore-pod.js';

export interface JsonPatchOp {
  op: 'add' | 'replace';
  path: string;
  value: unknown;
}

/** The Migration waiting for a replacement of this pod's owner, if any. */
export function migrationFor(
  pod: V1Pod,
  namespace: string,
  migrations: readonly Migration[],
): Migration | undefined {
  const owner = pod.metadata?.ownerReferences?.find((o) => o.controller);
  if (!owner) return undefined;
  return migrations.find(
    (m) =>
      m.metadata.namespace === namespace &&
      m.status?.phase === 'Replacing' &&
      m.status.ownerUID === owner.uid &&
      !m.status.targetPod,
  );
}

/** container → command + args from the controller's SOURCE_POD_ANNOTATION (empty when absent or bad). */
function recordedCommands(ckpt: Checkpoint): Map<string, string[]> {
  try {
    const rec = sourceRecord(ckpt);
    return new Map(
      rec.containers.filter((c) => c.command.length > 0).map((c) => [c.name, [...c.command, ...c.args]]),
    );
  } catch {
    return new Map();
  }
}

/**
 * The pod spec with the launcher in front of every captured container, pinned to `node`.
 * `listenFds`: the Migration's socket handoff (only the launcher can set LISTEN_PID).
 */
export function replacementSpec(
  spec: V1PodSpec,
  ckpt: Checkpoint,
  node: string,
  launcher: LauncherOptions,
  listenFds = false,
): V1PodSpec {
  const next = structuredClone(spec);
  const inject = launcher.hostPath === undefined;
  const path = launcher.hostPath ?? `${LAUNCHER.mountPath}/${LAUNCHER.binary}`;
  // Which containers got a table (status); what they run comes from a spec, never from status argv.
  const captured = new Set(
    (ckpt.status?.containers ?? []).filter((c) => c.pid !== undefined || c.argv?.length).map((c) => c.name),
  );
  const recorded = recordedCommands(ckpt);
  const mount = { name: LAUNCHER.volume, mountPath: LAUNCHER.mountPath, readOnly: true };
  next.containers = next.containers.map((c): V1Container => {
    if (!captured.has(c.name)) return c;
    // The source pod's spec as the controller recorded it, else this pod's own (same owner template).
    const argv = recorded.get(c.name) ?? [...(c.command ?? []), ...(c.args ?? [])];
    if (argv.length === 0) return c;
    const out: V1Container = {
      ...c,
      command: [
        path,
        '--timeout',
        String(launcher.timeoutSeconds ?? 600),
        ...(listenFds ? ['--listen-fds'] : []),
        '--',
        ...argv,
      ],
      args: [],
    };
    if (inject) out.volumeMounts = [...(c.volumeMounts ?? []), mount];
    return out;
  });
  if (inject) {
    next.initContainers = [
      {
        name: LAUNCHER.initContainer,
        image: launcher.image,
        command: ['cp', launcher.sourcePath ?? LAUNCHER.sourcePath, path],
        volumeMounts: [{ ...mount, readOnly: false }],
      },
      ...(next.initContainers ?? []),
    ];
    next.volumes = [...(next.volumes ?? []), { name: LAUNCHER.volume, emptyDir: {} }];
  }
  next.nodeName = node;
  return next;
}

/** The JSON patch for a replacement pod. */
export function replacementPatch(
  pod: V1Pod,
  mig: Migration,
  ckpt: Checkpoint,
  launcher: LauncherOptions,
): JsonPatchOp[] {
  const spec = replacementSpec(
    pod.spec ?? { containers: [] },
    ckpt,
    mig.status?.targetNode ?? '',
    launcher,
    mig.spec.listenFds ?? false,
  );
  return [
    { op: 'replace', path: '/spec', value: spec },
    {
      op: 'add',
      path: '/metadata/labels',
      value: { ...(pod.metadata?.labels ?? {}), [MIGRATION_LABEL]: mig.metadata.name ?? '' },
    },
  ];
}
