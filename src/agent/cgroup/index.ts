/** Cgroups: finding a pod's processes, and freezing them during capture. */
export { cgroupMounts, parseCgroupMounts, type CgroupMounts } from './mounts.js';
export {
  resolveCgroup,
  listTasks,
  cgroupOfPid,
  cgroupExists,
  membershipDir,
  type Cgroup,
  type CgroupTasks,
} from './cgroup.js';
export { freeze, thaw, isFrozen, freezerKind, withFrozen, installEmergencyThaw } from './freeze.js';
export type { AfterFreeze, FreezeOptions, FrozenResult } from './freeze.js';
export {
  findPodCgroup,
  podCgroupCandidates,
  podUidOfCgroup,
  bareContainerId,
  type PodCgroup,
  type PodQos,
} from './pod.js';
