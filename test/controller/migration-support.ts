/**
 * Migration test harness: a real API server with all three CRDs, two Ready nodes,
 * and helpers that play the agents' part (the controller is tested without a node).
 */
import type { Checkpoint, Migration, Restore } from '../../src/api/index.js';
import { MIGRATION, setCondition } from '../../src/api/index.js';
import { ResourceClient } from '../../src/kube/client.js';
import type { Harness } from './support.js';
import { installCrds, startHarness } from './support.js';

export interface MigrationHarness extends Harness {
  migrations: ResourceClient<Migration>;
}

export async function startMigrationHarness(nodes: string[] = ['n1', 'n2']): Promise<MigrationHarness> {
  const h = await startHarness();
  await installCrds(h.kc, ['migrations.fdckpt.io.yaml']);
  for (const name of nodes) await makeNode(h, name);
  return { ...h, migrations: new ResourceClient<Migration>(h.custom, MIGRATION) };
}

/**
 * A Ready, schedulable Node, as a kubelet and the node lifecycle controller leave it: the
 * API server's TaintNodesByCondition admission gives every new Node the not-ready taint,
 * which that controller (not running here) removes once the node reports Ready.
 */
export async function makeNode(h: Harness, name: string): Promise<void> {
  const node = await h.core.createNode({ body: { metadata: { name } } });
  const ready = await h.core.replaceNodeStatus({
    name,
    body: {
      ...node,
      status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ok' }] },
    },
  });
  await h.core.replaceNode({ name, body: { ...ready, spec: { ...ready.spec, taints: [] } } });
}

/** Checkpoint `name` of pod `podName` in default, with the status a capture of one `sleep 1000` leaves. */
export async function capturedCheckpoint(h: MigrationHarness, name: string, podName: string): Promise<void> {
  await h.checkpoints.api.createNamespacedCustomObject({
    group: 'fdckpt.io',
    version: 'v1alpha1',
    namespace: 'default',
    plural: 'checkpoints',
    body: { apiVersion: 'fdckpt.io/v1alpha1', kind: 'Checkpoint', metadata: { name }, spec: { podName } },
  });
  const ckpt = await h.checkpoints.get('default', name);
  await h.checkpoints.replaceStatus({
    ...ckpt,
    status: { containers: [{ name: 'app', processes: 1, fds: 3, pid: 42, argv: ['sleep', '1000'] }] },
  });
}

export async function createMigration(
  h: MigrationHarness,
  name: string,
  spec: Migration['spec'],
): Promise<Migration> {
  return (await h.custom.createNamespacedCustomObject({
    group: 'fdckpt.io',
    version: 'v1alpha1',
    namespace: 'default',
    plural: 'migrations',
    body: {
      apiVersion: 'fdckpt.io/v1alpha1',
      kind: 'Migration',
      metadata: { name, namespace: 'default' },
      spec,
    },
  })) as Migration;
}

/** The source agent's part of a capture: Captured (or not), the image, durations. */
export async function agentCaptured(h: Harness, name: string, ok = true): Promise<void> {
  const c = await h.checkpoints.get('default', name);
  let conditions = setCondition(c.status?.conditions, {
    type: 'Captured',
    status: ok ? 'True' : 'False',
    reason: ok ? 'Captured' : 'UnsupportedFds',
    message: ok ? '5 fds in 1 processes' : '1 fd(s) cannot be restored; first: fd 3: unlinked file',
  });
  conditions = setCondition(conditions, {
    type: 'LeakFree',
    status: 'True',
    reason: 'NoLeaks',
    message: 'none',
  });
  const status: Checkpoint['status'] = {
    ...c.status,
    conditions,
    containers: [{ name: 'app', processes: 1, fds: 5, pid: 42, argv: ['sleep', '1000'] }],
    totalFds: 5,
    durations: { freezeMs: 3, captureMs: 2 },
  };
  if (ok)
    status.image = {
      node: c.status?.nodeName ?? '',
      path: '/var/lib/fdckpt/x.img',
      size: 100,
      sha256: 'b'.repeat(64),
    };
  await h.checkpoints.replaceStatus({ ...c, status });
}

/** The target agent's part of a restore: Replayed True or False (with the reason it gives). */
export async function agentReplayed(
  h: Harness,
  name: string,
  reason = 'Replayed',
  message = '5 fds replayed',
): Promise<void> {
  const r = await h.restores.get('default', name);
  const ok = reason === 'Replayed';
  await h.restores.replaceStatus({
    ...r,
    status: {
      ...r.status,
      conditions: setCondition(r.status?.conditions, {
        type: 'Replayed',
        status: ok ? 'True' : 'False',
        reason,
        message,
      }),
      ...(ok ? { fdsReplayed: 5, durations: { replayMs: 4, transferMs: 7 } } : {}),
    } satisfies Restore['status'],
  });
}

/** The source agent thawed the pod it had left frozen. */
export async function agentThawed(h: Harness, name: string): Promise<void> {
  const c = await h.checkpoints.get('default', name);
  await h.checkpoints.replaceStatus({
    ...c,
    status: {
      ...c.status,
      conditions: setCondition(c.status?.conditions, {
        type: 'Thawed',
        status: 'True',
        reason: 'Thawed',
        message: 'ok',
      }),
    },
  });
}

/** A pod's phase, as its kubelet reports it. */
export async function setPodPhase(h: Harness, name: string, phase: string): Promise<void> {
  const pod = await h.core.readNamespacedPod({ name, namespace: 'default' });
  await h.core.replaceNamespacedPodStatus({
    name,
    namespace: 'default',
    body: {
      ...pod,
      status: {
        phase,
        qosClass: 'BestEffort',
        containerStatuses: [
          {
            name: 'app',
            image: 'busybox',
            imageID: '',
            ready: true,
            restartCount: 0,
            containerID: `containerd://${'7'.repeat(64)}`,
            state: { running: { startedAt: new Date() } },
          },
        ],
      },
    },
  });
}

/** The pod if it exists and is not being deleted; a kubelet's confirmation finishes a graceful delete. */
export async function podAlive(h: Harness, name: string): Promise<boolean> {
  try {
    const pod = await h.core.readNamespacedPod({ name, namespace: 'default' });
    return !pod.metadata?.deletionTimestamp;
  } catch {
    return false;
  }
}

/** What a kubelet does once a pod's containers stopped: the zero-grace delete. */
export async function kubeletConfirmsDeletion(h: Harness, name: string): Promise<void> {
  await h.core.deleteNamespacedPod({ name, namespace: 'default', gracePeriodSeconds: 0 });
}
