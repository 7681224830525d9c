/**
 * Pod cgroups laid out as a real node's kubelet (cgroupfs driver) lays them out on cgroup
 * v2, so that the agent's cgroup lookup is the same code here and on a cluster:
 *   <v2root>/kubepods/pod<UID>/<containerID>             Guaranteed
 *   <v2root>/kubepods/burstable/pod<UID>/<containerID>   Burstable
 *   <v2root>/kubepods/besteffort/pod<UID>/<containerID>  BestEffort
 * The v2 root is the cgroup2 mount (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid
 * hosts); FDCKPT_CGROUP_ROOT (or the kubelet option) moves the whole tree elsewhere.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The mount point of the cgroup v2 hierarchy. */
export function detectCgroupV2Root(mountinfo = '/proc/self/mountinfo'): string {
  const mounts = readFileSync(mountinfo, 'utf8')
    .split('\n')
    .map((line) => {
      const [left, right] = line.split(' - ');
      return { point: left?.split(' ')[4] ?? '', fstype: right?.split(' ')[0] ?? '' };
    })
    .filter((m) => m.fstype === 'cgroup2');
  const preferred =
    mounts.find((m) => m.point === '/sys/fs/cgroup') ??
    mounts.find((m) => m.point === '/sys/fs/cgroup/unified') ??
    mounts[0];
  if (!preferred)
    throw new Error('no cgroup2 mount in /proc/self/mountinfo: the process kubelet needs cgroup v2');
  return preferred.point;
}

/** The root under which kubepods/ is made: the option, FDCKPT_CGROUP_ROOT, or the v2 mount. */
export function cgroupRoot(option?: string): string {
  return option ?? process.env['FDCKPT_CGROUP_ROOT'] ?? detectCgroupV2Root();
}

/** The QoS classes of core/v1. */
export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

/** The pod's cgroup directory. */
export function podCgroupDir(root: string, qos: QosClass, uid: string): string {
  const tier = qos === 'Guaranteed' ? [] : [qos.toLowerCase()];
  return join(root, 'kubepods', ...tier, `pod${uid}`);
}

/** Creates a container's cgroup (and its parents); returns its directory. */
export function makeContainerCgroup(podDir: string, containerId: string): string {
  const dir = join(podDir, containerId);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Pids in a cgroup (empty when it is gone). */
export function cgroupPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter((l) => l)
      .map(Number);
  } catch {
    return [];
  }
}

/** Kills every process in a cgroup at once (cgroup.kill, Linux ≥ 5.14), else one by one. */
export function killCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  try {
    writeFileSync(join(dir, 'cgroup.kill'), '1');
    return;
  } catch {
    // Older kernels: fall back to signalling each pid.
  }
  for (const pid of cgroupPids(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** Sends a signal to every process in a cgroup. */
export function signalCgroup(dir: string, signal: NodeJS.Signals): void {
  for (const pid of cgroupPids(dir)) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * Removes an empty cgroup directory and then its empty pod parent (the shared kubepods
 * tiers stay, as on a real node). True when `dir` is gone.
 */
export function removeCgroup(dir: string, root: string): boolean {
  if (!dir.startsWith(join(root, 'kubepods'))) return true;
  let cur = dir;
  let first = true;
  while (cur.startsWith(join(root, 'kubepods')) && cur !== root) {
    try {
      rmdirSync(cur);
    } catch (e) {
      // Not empty (another container, a living process): stop climbing.
      if (first) return (e as NodeJS.ErrnoException).code === 'ENOENT';
      return true;
    }
    first = false;
    if (/\/kubepods(\/(burstable|besteffort))?$/.test(join(cur, '..'))) return true;
    cur = join(cur, '..');
  }
  return !first;
}
