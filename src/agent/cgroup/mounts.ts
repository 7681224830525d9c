/**
 * Where the cgroup hierarchies are mounted. Hosts come in three shapes: pure v2
 * (cgroup2 at /sys/fs/cgroup), hybrid (v1 controllers under /sys/fs/cgroup/*,
 * cgroup2 at /sys/fs/cgroup/unified) and legacy (v1 only). We read
 * /proc/self/mountinfo rather than guessing paths so that odd layouts work too.
 */
import { readFileSync } from 'node:fs';

/** The mount points fdckpt cares about. */
export interface CgroupMounts {
  /** Mount point of the cgroup2 hierarchy, if any. */
  v2?: string;
  /** Mount point of the v1 hierarchy that has the freezer controller, if any. */
  v1Freezer?: string;
}

/** Undoes mountinfo's octal escapes (`\040` for a space). */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses mountinfo text (exported for tests of odd layouts). */
export function parseCgroupMounts(mountinfo: string): CgroupMounts {
  const result: CgroupMounts = {};
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const [fstype, , superOptions = ''] = line.slice(sep + 3).split(' ');
    const mountPoint = left[4];
    const root = left[3];
    // A cgroup filesystem bind-mounted from a sub-tree (root != '/') is a container's
    // view; the host's own mount is the one we want.
    if (mountPoint === undefined || root !== '/') continue;
    if (fstype === 'cgroup2' && result.v2 === undefined) result.v2 = unescapeMountPath(mountPoint);
    if (
      fstype === 'cgroup' &&
      superOptions.split(',').includes('freezer') &&
      result.v1Freezer === undefined
    ) {
      result.v1Freezer = unescapeMountPath(mountPoint);
    }
  }
  return result;
}

/**
 * Every host cgroup hierarchy's mount point (cgroup and cgroup2, root '/'), in
 * mountinfo order: what a cleanup that must reach a cgroup on every controller walks.
 * A plain directory under /sys/fs/cgroup (the tmpfs itself) is not one.
 */
export function parseCgroupHierarchies(mountinfo: string): string[] {
  const out: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const fstype = line.slice(sep + 3).split(' ')[0];
    const mountPoint = left[4];
    if (mountPoint === undefined || left[3] !== '/') continue;
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const at = unescapeMountPath(mountPoint);
    if (!out.includes(at)) out.push(at);
  }
  return out;
}

let cached: CgroupMounts | undefined;

/** The cgroup mounts of this host (read once). */
export function cgroupMounts(): CgroupMounts {
  cached ??= parseCgroupMounts(readFileSync('/proc/self/mountinfo', 'utf8'));
  return cached;
}
