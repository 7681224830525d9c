/**
 * Preflight: the migration-readiness answer. Captures the cgroup without
 * writing an image (and, by default, without freezing it), checks it for
 * leaks, and classifies every fd of every process.
 */
import type { FileType } from '../model.js';
import { CaptureError } from '../capture/errors.js';
import type { CaptureOptions, FdProblem } from '../capture/types.js';
import { captureCgroup, type CgroupCaptureResult } from './cgroupcapture.js';
import { describePlace, type Leak, type LeakReport, type PodNamer } from './report.js';

/** The verdict for one fd, worst first: the first that applies wins. */
export const FD_CLASSES = [
  'leaked',
  'unlinked',
  'locked',
  'owned',
  'unsupported',
  'ignored',
  'restorable',
] as const;
/** One of FD_CLASSES. */
export type FdClass = (typeof FD_CLASSES)[number];

/** One fd of the pod and what would happen to it in a checkpoint. */
export interface FdVerdict {
  pid: number;
  fd: number;
  type: FileType;
  /** The /proc link: a path, `pipe:[N]`, `socket:[N]`, `anon_inode:[...]`. */
  path: string;
  class: FdClass;
  /** Every reason that applies (a leaked fd may also be unsupported). */
  reasons: string[];
  /** Ignoring this file type would accept the fd (see FdProblem.ignoreType). */
  ignoreType?: FileType;
}

/** What preflight answers: every fd's class, the counts, the leaks, and whether the pod is ready. */
export interface PreflightReport {
  cgroup: string;
  /** True when every fd is restorable or ignored and nothing leaks. */
  ready: boolean;
  counts: Record<FdClass, number>;
  fds: FdVerdict[];
  leaks: LeakReport;
}

/** Options of preflightCgroup(). */
export interface PreflightOptions extends CaptureOptions {
  /** Only these cgroups below the given one (a pod's chosen containers). */
  only?: readonly string[];
  /** Freeze the cgroup while reading its tables (default: no; a dry run should not stop the pod). */
  freeze?: boolean;
  podName?: PodNamer;
}

/** Without freezing, an fd can close under us: retry a few times before giving up. */
const UNFROZEN_ATTEMPTS = 3;

async function captureForPreflight(path: string, options: PreflightOptions): Promise<CgroupCaptureResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await captureCgroup(path, { ...options, leakPolicy: 'warn', noFreeze: !options.freeze });
    } catch (err) {
      if (!(err instanceof CaptureError) || options.freeze || attempt >= UNFROZEN_ATTEMPTS) throw err;
    }
  }
}

/** Classifies every fd of the cgroup's processes; never writes an image. */
export async function preflightCgroup(
  path: string,
  options: PreflightOptions = {},
): Promise<PreflightReport> {
  const r = await captureForPreflight(path, options);
  return classify(r, r.leaks!);
}

/** The per-fd verdicts of a capture and its leak report. */
export function classify(r: CgroupCaptureResult, leaks: LeakReport): PreflightReport {
  const cp = r.checkpoint;
  const files = new Map(cp.files.map((f) => [f.objref, f]));
  const objrefOf = new Map<string, number>();
  for (const proc of cp.processes) {
    const table = cp.tables.find((t) => t.objref === proc.table);
    for (const e of table?.fds ?? []) objrefOf.set(`${proc.pid}:${e.fd}`, e.file);
  }
  // A leak names one pod fd; every fd sharing that open file is leaked too.
  const leakedFiles = new Map<number, Leak[]>();
  for (const l of leaks.leaks) {
    const objref = objrefOf.get(`${l.inside.pid}:${l.inside.fd}`);
    if (objref !== undefined) leakedFiles.set(objref, [...(leakedFiles.get(objref) ?? []), l]);
  }
  const problems = new Map<string, FdProblem[]>();
  for (const p of r.problems)
    problems.set(`${p.pid}:${p.fd}`, [...(problems.get(`${p.pid}:${p.fd}`) ?? []), p]);

  const fds: FdVerdict[] = [];
  const counts = Object.fromEntries(FD_CLASSES.map((c) => [c, 0])) as Record<FdClass, number>;
  const seenTables = new Set<number>();
  for (const proc of cp.processes) {
    if (seenTables.has(proc.table)) continue;
    seenTables.add(proc.table);
    const table = cp.tables.find((t) => t.objref === proc.table);
    for (const e of table?.fds ?? []) {
      const file = files.get(e.file)!;
      const classes = new Set<FdClass>();
      const reasons: string[] = [];
      let ignoreType: FileType | undefined;
      for (const l of leakedFiles.get(e.file) ?? []) {
        classes.add('leaked');
        const o = l.outside;
        reasons.push(
          `${l.via} with pid ${o.pid}${o.fd === undefined ? '' : ` fd ${o.fd}`} (${o.comm}, ${describePlace(o)})`,
        );
      }
      for (const p of problems.get(`${proc.pid}:${e.fd}`) ?? []) {
        if (p.kind !== 'vanished') classes.add(p.kind);
        reasons.push(p.message);
        ignoreType ??= p.ignoreType;
      }
      if (file.ignored) {
        classes.add('ignored');
        reasons.push(`ignored by ${file.ignored.reason}`);
      }
      const cls = FD_CLASSES.find((c) => classes.has(c)) ?? 'restorable';
      counts[cls]++;
      const verdict: FdVerdict = {
        pid: proc.pid,
        fd: e.fd,
        type: file.type,
        path: file.path,
        class: cls,
        reasons,
      };
      if (ignoreType) verdict.ignoreType = ignoreType;
      fds.push(verdict);
    }
  }
  const ready =
    fds.every((v) => v.class === 'restorable' || v.class === 'ignored') && leaks.leaks.length === 0;
  return { cgroup: r.cgroup.path, ready, counts, fds, leaks };
}
