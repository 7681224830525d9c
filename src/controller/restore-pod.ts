/**
 * Builds the pod a Restore creates: the checkpointed pod's spec, pinned to
 * the node that holds the image, with the launcher injected. An init container
 * copies the static fdckpt-hold into an emptyDir; each restored container runs
 * `fdckpt-hold -- <its command and args>` so that the agent can find the
 * waiting launcher, replay the table into it at exec, and let the program start.
 *
 * The command comes from the source pod's spec as the controller recorded it
 * on the Checkpoint (SOURCE_POD_ANNOTATION, metadata that agents cannot
 * write), never from the agent-written status argv: whoever can write
 * checkpoints/status (any node's agent) must not choose what a pod runs.
 */
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { Checkpoint, Restore } from '../api/index.js';
import { API_VERSION, LAUNCHER, RESTORE, RESTORE_LABEL } from '../api/index.js';
import { RestorePodError, sourceRecord } from '../api/index.js';

export interface LauncherOptions {
  /** Image holding the launcher (the fdckpt image). */
  image: string;
  /** Path of fdckpt-hold inside that image. */
  sourcePath?: string;
  /**
   * The launcher is already on every node at this path: no init container, no
   * volume. For the local control plane, whose process kubelet ignores images
   * and volumes, and for clusters that ship fdckpt-hold on the host.
   */
  hostPath?: string;
  /** How long the launcher waits for the agent before it gives up (exit 125). Default 600. */
  timeoutSeconds?: number;
}

/** The name of the pod a Restore creates. */
export function restoredPodName(restore: Restore): string {
  return restore.spec.target.newPod?.name ?? `${restore.metadata.name ?? 'restore'}-restored`;
}

/** Labels that would make a controller or a service claim the copy by mistake. */
const DROPPED_LABELS = [
  'pod-template-hash',
  'controller-revision-hash',
  'statefulset.kubernetes.io/pod-name',
];

export function buildRestoredPod(
  restore: Restore,
  ckpt: Checkpoint,
  source: V1Pod,
  node: string,
  launcher: LauncherOptions,
): V1Pod {
  const spec = structuredClone(source.spec ?? { containers: [] });
  const inject = launcher.hostPath === undefined;
  const launcherPath = launcher.hostPath ?? `${LAUNCHER.mountPath}/${LAUNCHER.binary}`;
  const record = sourceRecord(ckpt);
  // The template must be the pod that was captured, not one made again under its name.
  if (source.metadata?.uid !== record.uid) {
    throw new RestorePodError(
      'SourcePodChanged',
      `pod ${source.metadata?.name} is ${source.metadata?.uid}, the checkpoint captured ${record.uid}`,
    );
  }
  const recorded = new Map(record.containers.map((c) => [c.name, c]));
  // Which containers got a table: status says it, but it only chooses where the launcher goes.
  const captured = new Set(
    (ckpt.status?.containers ?? []).filter((c) => c.pid !== undefined || c.argv?.length).map((c) => c.name),
  );
  const mount = { name: LAUNCHER.volume, mountPath: LAUNCHER.mountPath, readOnly: true };
  spec.containers = spec.containers.map((c): V1Container => {
    if (!captured.has(c.name)) return c;
    const rec = recorded.get(c.name);
    const argv = [...(rec?.command ?? []), ...(rec?.args ?? [])];
    if (rec === undefined || rec.command.length === 0) {
      // The image's entrypoint is not in the spec; the agent's argv is not to be trusted.
      throw new RestorePodError(
        'NoCommand',
        `container ${c.name} of pod ${source.metadata?.name} has no command in its spec: a restored container runs its spec's command`,
      );
    }
    const restored: V1Container = {
      ...c,
      command: [
        launcherPath,
        '--timeout',
        String(launcher.timeoutSeconds ?? 600),
        // Socket handoff: only the launcher can set LISTEN_PID (its own pid) before the exec.
        ...(restore.spec.listenFds ? ['--listen-fds'] : []),
        '--',
        ...argv,
      ],
      args: [],
    };
    if (inject) restored.volumeMounts = [...(c.volumeMounts ?? []), mount];
    return restored;
  });
  if (inject) {
    spec.initContainers = [
      {
        name: LAUNCHER.initContainer,
        image: launcher.image,
        command: ['cp', launcher.sourcePath ?? LAUNCHER.sourcePath, launcherPath],
        volumeMounts: [{ ...mount, readOnly: false }],
      },
      ...(spec.initContainers ?? []),
    ];
    spec.volumes = [...(spec.volumes ?? []), { name: LAUNCHER.volume, emptyDir: {} }];
  }
  spec.nodeName = node;
  // A pod is started once; the restored process must not be restarted without its table.
  spec.restartPolicy = 'Never';
  delete spec.hostname;
  const labels = Object.fromEntries(
    Object.entries(source.metadata?.labels ?? {}).filter(([k]) => !DROPPED_LABELS.includes(k)),
  );
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: restoredPodName(restore),
      namespace: restore.metadata.namespace,
      labels: { ...labels, [RESTORE_LABEL]: restore.metadata.name ?? '' },
      annotations: { 'fdckpt.io/checkpoint': ckpt.metadata.name ?? '' },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: RESTORE.kind,
          name: restore.metadata.name ?? '',
          uid: restore.metadata.uid ?? '',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec,
  };
}
