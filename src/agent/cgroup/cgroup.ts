/**
 * A cgroup as fdckpt sees it: one path, found in the v2 hierarchy and/or the
 * v1 freezer hierarchy, and the processes and threads in it and below it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { cgroupMounts, type CgroupMounts } from './mounts.js';

/** A resolved cgroup. At least one of the two directories is set. */
export interface Cgroup {
  /** The cgroup's path relative to its hierarchy's root, starting with '/'. */
  path: string;
  /** Its directory in the cgroup2 hierarchy, when it exists there. */
  v2Dir?: string;
  /** Its directory in the v1 freezer hierarchy, when it exists there. */
  v1FreezerDir?: string;
}

function isDir(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

function under(path: string, root: string | undefined): string | undefined {
  if (root === undefined) return undefined;
  if (path === root) return '/';
  return path.startsWith(`${root}/`) ? path.slice(root.length) : undefined;
}

/**
 * Resolves what a user typed: an absolute directory in a cgroup hierarchy
 * (`/sys/fs/cgroup/unified/kubepods/...`, `/sys/fs/cgroup/freezer/...`), or a
 * cgroup path relative to the hierarchy roots (`/kubepods/besteffort/pod...`).
 */
export function resolveCgroup(given: string, mounts: CgroupMounts = cgroupMounts()): Cgroup {
  if (given === '') throw new Error('cgroup path is empty');
  if (mounts.v2 === undefined && mounts.v1Freezer === undefined) {
    throw new Error('no cgroup2 and no v1 freezer hierarchy is mounted (see /proc/self/mountinfo)');
  }
  const abs = normalize(given.startsWith('/') ? given : `/${given}`).replace(/\/+$/, '') || '/';
  // A directory of one hierarchy means that hierarchy's cgroup only: on a hybrid host the
  // same relative path in the other hierarchy may hold other processes.
  const inV2 = under(abs, mounts.v2);
  const inV1 = inV2 === undefined ? under(abs, mounts.v1Freezer) : undefined;
  if (inV2 !== undefined || inV1 !== undefined) {
    const rel = (inV2 ?? inV1)!;
    if (!isDir(abs))
      throw new Error(
        `cgroup ${given}: no such cgroup under ${inV2 !== undefined ? mounts.v2 : mounts.v1Freezer}`,
      );
    return inV2 !== undefined ? { path: rel, v2Dir: abs } : { path: rel, v1FreezerDir: abs };
  }
  // A directory of another v1 controller (/sys/fs/cgroup/memory/x): same relative path.
  const v1Other = /^\/sys\/fs\/cgroup\/[^/]+(\/.*)?$/.exec(abs);
  const rel = v1Other && isDir(abs) ? (v1Other[1] ?? '/') : abs;
  const cg: Cgroup = { path: rel };
  if (mounts.v2 !== undefined && isDir(join(mounts.v2, rel))) cg.v2Dir = join(mounts.v2, rel);
  if (mounts.v1Freezer !== undefined && isDir(join(mounts.v1Freezer, rel)))
    cg.v1FreezerDir = join(mounts.v1Freezer, rel);
  if (cg.v2Dir === undefined && cg.v1FreezerDir === undefined) {
    const where = [mounts.v2, mounts.v1Freezer].filter((m) => m !== undefined).join(' or ');
    throw new Error(`cgroup ${given}: no such cgroup under ${where}`);
  }
  return cg;
}

/** The directory whose membership files we read: v2 when present (it is the one we freeze). */
export function membershipDir(cg: Cgroup): string {
  return (cg.v2Dir ?? cg.v1FreezerDir)!;
}

function readIds(file: string): number[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    // A child cgroup removed while we walk it holds no task any more.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`reading ${file}: ${(err as Error).message}`);
  }
  const ids: number[] = [];
  for (const line of text.split('\n')) if (line !== '') ids.push(Number(line));
  return ids;
}

function descendants(dir: string, out: string[]): void {
  out.push(dir);
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const e of entries) if (e.isDirectory()) descendants(join(dir, e.name), out);
}

/** Every process (thread-group leader ids) and every thread in the cgroup and its descendants. */
export interface CgroupTasks {
  /** Sorted, unique. */
  pids: number[];
  /** Sorted, unique; includes the pids. */
  tids: number[];
}

/** Lists the tasks of a cgroup recursively (cgroup.procs / cgroup.threads, or v1 tasks). */
export function listTasks(cg: Cgroup): CgroupTasks {
  const dirs: string[] = [];
  descendants(membershipDir(cg), dirs);
  const v2 = cg.v2Dir !== undefined;
  const pids = new Set<number>();
  const tids = new Set<number>();
  for (const dir of dirs) {
    for (const pid of readIds(join(dir, 'cgroup.procs'))) pids.add(pid);
    for (const tid of readIds(join(dir, v2 ? 'cgroup.threads' : 'tasks'))) tids.add(tid);
  }
  // In v2 threaded sub-trees cgroup.procs is empty below the domain: add the thread groups of listed threads.
  if (v2) for (const tid of tids) if (!pids.has(tid)) addTgid(tid, pids);
  for (const pid of pids) tids.add(pid);
  const byNumber = (a: number, b: number): number => a - b;
  return { pids: [...pids].sort(byNumber), tids: [...tids].sort(byNumber) };
}

function addTgid(tid: number, pids: Set<number>): void {
  try {
    const m = /^Tgid:\s+(\d+)$/m.exec(readFileSync(`/proc/${tid}/status`, 'utf8'));
    if (m) pids.add(Number(m[1]));
  } catch {
    // The thread exited: nothing to add.
  }
}

/** The cgroup v2 path of a process (`0::/x/y` in /proc/PID/cgroup), else its v1 freezer path, or ''. */
export function cgroupOfPid(pid: number): string {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return '';
  }
  let v1 = '';
  let v2 = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('0::')) v2 = line.slice(3);
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m && m[1]!.split(',').includes('freezer')) v1 = m[2]!;
  }
  // On a hybrid host a process left at the v2 root may still sit in a v1 freezer group.
  return v2 !== '' && (v2 !== '/' || v1 === '' || v1 === '/') ? v2 : v1;
}

/** True when the cgroup still exists (it can be removed under us). */
export function cgroupExists(cg: Cgroup): boolean {
  return existsSync(membershipDir(cg));
}
