/**
 * Finding a Kubernetes pod's cgroups from its UID and container IDs, across the
 * layouts kubelets produce:
 *
 *   cgroupfs driver  /kubepods[/burstable|/besteffort]/pod<UID>/<cid>  (containerd)
 *                    .../pod<UID>/crio-<cid>                            (CRI-O)
 *   systemd driver   /kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<UID_>.slice/
 *                        cri-containerd-<cid>.scope | crio-<cid>.scope | docker-<cid>.scope
 *
 * (UID_ is the UID with '-' replaced by '_'.) Some setups nest all of this under
 * a prefix (kind, --cgroup-root); when the fixed places miss we search a few
 * levels down for the pod directory.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { resolveCgroup, type Cgroup } from './cgroup.js';
import { cgroupMounts, type CgroupMounts } from './mounts.js';

/** Kubernetes QoS class, which picks the parent cgroup. */
export type PodQos = 'guaranteed' | 'burstable' | 'besteffort';

/** A pod's cgroup and, when asked, its containers' cgroups. */
export interface PodCgroup {
  uid: string;
  pod: Cgroup;
  containers: { id: string; cgroup: Cgroup }[];
}

const UID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** `containerd://abc` / `cri-o://abc` / `abc` → `abc`. */
export function bareContainerId(id: string): string {
  const i = id.indexOf('://');
  return i >= 0 ? id.slice(i + 3) : id;
}

/** The cgroup paths (relative to a hierarchy root) where a pod with this UID may live, most likely first. */
export function podCgroupCandidates(uid: string, qos?: PodQos): string[] {
  const u = uid.replace(/-/g, '_');
  const qoses: PodQos[] = qos ? [qos] : ['besteffort', 'burstable', 'guaranteed'];
  const out: string[] = [];
  for (const q of qoses) {
    out.push(q === 'guaranteed' ? `/kubepods/pod${uid}` : `/kubepods/${q}/pod${uid}`);
    out.push(
      q === 'guaranteed'
        ? `/kubepods.slice/kubepods-pod${u}.slice`
        : `/kubepods.slice/kubepods-${q}.slice/kubepods-${q}-pod${u}.slice`,
    );
  }
  return out;
}

/** Directory names a container with this ID may have inside its pod's directory. */
export function containerDirNames(cid: string): string[] {
  return [cid, `cri-containerd-${cid}.scope`, `crio-${cid}.scope`, `crio-${cid}`, `docker-${cid}.scope`];
}

function isDir(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/** Names that denote this pod's directory, for the search under unknown prefixes. */
function isPodDirName(name: string, uid: string): boolean {
  const u = uid.replace(/-/g, '_');
  return (
    name === `pod${uid}` ||
    name === `pod${u}` ||
    (name.endsWith(`-pod${u}.slice`) && name.startsWith('kubepods'))
  );
}

function searchPodDir(root: string, rel: string, uid: string, depth: number): string | undefined {
  if (depth < 0) return undefined;
  let names: string[];
  try {
    names = readdirSync(join(root, rel), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return undefined;
  }
  for (const name of names) if (isPodDirName(name, uid)) return `${rel}/${name}`.replace(/^\/\//, '/');
  for (const name of names) {
    const found = searchPodDir(root, `${rel === '/' ? '' : rel}/${name}`, uid, depth - 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Finds a pod's cgroup by UID, and each given container's cgroup inside it.
 * Throws naming what was looked for and where when something is missing.
 */
export function findPodCgroup(
  uid: string,
  containerIds: readonly string[] = [],
  options: { qos?: PodQos; mounts?: CgroupMounts } = {},
): PodCgroup {
  if (!UID_RE.test(uid))
    throw new Error(`pod UID ${JSON.stringify(uid)}: not a UID (8-4-4-4-12 lowercase hex)`);
  const mounts = options.mounts ?? cgroupMounts();
  const roots = [mounts.v2, mounts.v1Freezer].filter((r): r is string => r !== undefined);
  const candidates = podCgroupCandidates(uid, options.qos);
  let rel: string | undefined;
  for (const root of roots) {
    rel = candidates.find((c) => isDir(join(root, c))) ?? searchPodDir(root, '/', uid, 4);
    if (rel !== undefined) break;
  }
  if (rel === undefined) {
    throw new Error(
      `pod ${uid}: no cgroup found under ${roots.join(' or ')} (looked at ${candidates.join(', ')} and 4 levels down)`,
    );
  }
  const pod = resolveCgroup(rel, mounts);
  const containers = containerIds.map((given) => {
    const id = bareContainerId(given);
    if (!/^[0-9a-f]{12,64}$/.test(id))
      throw new Error(`container ID ${JSON.stringify(given)}: not a hex container ID`);
    const name = containerDirNames(id).find((n) => roots.some((r) => isDir(join(r, rel, n))));
    if (name === undefined) {
      throw new Error(
        `container ${id} of pod ${uid}: no cgroup in ${rel} (tried ${containerDirNames(id).join(', ')})`,
      );
    }
    return { id, cgroup: resolveCgroup(`${rel}/${name}`, mounts) };
  });
  return { uid, pod, containers };
}

/** The pod UID a cgroup path belongs to, when it follows one of the kubelet layouts. */
export function podUidOfCgroup(path: string): string | undefined {
  const m =
    /(?:^|\/)(?:kubepods[^/]*-)?pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?(?:\/|$)/.exec(
      path,
    );
  return m ? m[1]!.replace(/_/g, '-') : undefined;
}
