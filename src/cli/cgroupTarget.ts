/**
 * The flags that name a pod's cgroup on the command line, shared by leaks,
 * preflight and capture: `--cgroup PATH`, or `--pod-uid UID [--container ID ...]`
 * (the kubelet layouts). With containers, the pod is frozen but only those
 * containers are captured, and they are the boundary of the leak check.
 */
import { findPodCgroup } from '../agent/cgroup/pod.js';
import { type ParsedArgs, UsageError, single } from './command.js';

export const TARGET_FLAGS = ['cgroup', 'pod-uid', 'container'] as const;

/** What the flags name: the cgroup to freeze, and (with --container) the ones to capture. */
export interface CgroupTarget {
  path: string;
  only: string[];
}

/** The cgroup the flags name, or undefined when none of them is given. */
export function cgroupTarget(parsed: ParsedArgs, usage: string): CgroupTarget | undefined {
  const cgroup = single(parsed, 'cgroup');
  const uid = single(parsed, 'pod-uid');
  const containers = parsed.flags.get('container') ?? [];
  if (cgroup !== undefined && uid !== undefined)
    throw new UsageError(`give --cgroup or --pod-uid, not both; usage: fdckpt ${usage}`);
  if (containers.length > 0 && uid === undefined) throw new UsageError('--container needs --pod-uid');
  if (uid !== undefined) {
    const pod = findPodCgroup(uid, containers);
    return { path: pod.pod.path, only: pod.containers.map((c) => c.cgroup.path) };
  }
  return cgroup === undefined ? undefined : { path: cgroup, only: [] };
}

/** Fails on flags the command does not know, naming the first. */
export function rejectUnknown(parsed: ParsedArgs, known: readonly string[], usage: string): void {
  const unknown = [...parsed.flags.keys()].filter((k) => !known.includes(k));
  if (unknown.length > 0 || parsed.positional.length > 0) {
    throw new UsageError(
      `unexpected ${unknown.length ? `--${unknown[0]}` : parsed.positional[0]}; usage: fdckpt ${usage}`,
    );
  }
}
