/** core/v1 PodStatus for pods run by the process kubelet, built as a kubelet reports it. */
import type { V1ContainerStatus, V1PodCondition, V1PodStatus } from '@kubernetes/client-node';
import type { ExitInfo } from './container.js';

/** What the kubelet knows about one container of a pod. */
export interface ContainerState {
  name: string;
  image: string;
  id?: string;
  restartCount: number;
  startedAt?: string;
  exit?: ExitInfo;
  /** Set while the container cannot run (no command, spawn failure). */
  waiting?: { reason: string; message: string };
  lastExit?: { id: string; startedAt: string; exit: ExitInfo };
}

function containerStatus(c: ContainerState): V1ContainerStatus {
  const running = c.id !== undefined && c.exit === undefined && c.waiting === undefined;
  const state: V1ContainerStatus['state'] = c.waiting
    ? { waiting: c.waiting }
    : c.exit
      ? {
          terminated: {
            exitCode: c.exit.exitCode,
            reason: c.exit.exitCode === 0 ? 'Completed' : 'Error',
            ...(c.exit.signal ? { signal: c.exit.exitCode - 128 } : {}),
            startedAt: new Date(c.startedAt ?? c.exit.finishedAt),
            finishedAt: new Date(c.exit.finishedAt),
            containerID: `containerd://${c.id}`,
          },
        }
      : { running: { startedAt: new Date(c.startedAt ?? Date.now()) } };
  return {
    name: c.name,
    image: c.image,
    imageID: '',
    ...(c.id ? { containerID: `containerd://${c.id}` } : {}),
    ready: running,
    started: running,
    restartCount: c.restartCount,
    state,
    ...(c.lastExit
      ? {
          lastState: {
            terminated: {
              exitCode: c.lastExit.exit.exitCode,
              reason: c.lastExit.exit.exitCode === 0 ? 'Completed' : 'Error',
              startedAt: new Date(c.lastExit.startedAt),
              finishedAt: new Date(c.lastExit.exit.finishedAt),
              containerID: `containerd://${c.lastExit.id}`,
            },
          },
        }
      : {}),
  };
}

/** The phase a kubelet reports: Running while any container runs or will restart. */
export function podPhase(containers: ContainerState[], willRestart: boolean): string {
  // Waiting before ever running is Pending; waiting to restart (CrashLoopBackOff) is Running.
  if (containers.some((c) => c.waiting && !c.lastExit)) return 'Pending';
  if (containers.some((c) => c.waiting)) return 'Running';
  if (containers.some((c) => !c.exit) || willRestart) return 'Running';
  return containers.every((c) => c.exit!.exitCode === 0) ? 'Succeeded' : 'Failed';
}

/** The full status. */
export function podStatus(opts: {
  containers: ContainerState[];
  willRestart: boolean;
  hostIP: string;
  podIP: string;
  startTime: string;
  qosClass: string;
  since: string;
}): V1PodStatus {
  const phase = podPhase(opts.containers, opts.willRestart);
  const ready = opts.containers.every((c) => c.id !== undefined && !c.exit && !c.waiting);
  const cond = (type: string, status: boolean, reason?: string): V1PodCondition => ({
    type,
    status: status ? 'True' : 'False',
    lastTransitionTime: new Date(opts.since),
    ...(reason && !status ? { reason } : {}),
  });
  return {
    phase,
    conditions: [
      cond('PodReadyToStartContainers', true),
      cond('Initialized', true),
      cond(
        'Ready',
        ready,
        phase === 'Succeeded' || phase === 'Failed' ? 'PodCompleted' : 'ContainersNotReady',
      ),
      cond(
        'ContainersReady',
        ready,
        phase === 'Succeeded' || phase === 'Failed' ? 'PodCompleted' : 'ContainersNotReady',
      ),
      cond('PodScheduled', true),
    ],
    hostIP: opts.hostIP,
    hostIPs: [{ ip: opts.hostIP }],
    podIP: opts.podIP,
    podIPs: [{ ip: opts.podIP }],
    startTime: new Date(opts.startTime),
    qosClass: opts.qosClass,
    containerStatuses: opts.containers.map(containerStatus),
  };
}
