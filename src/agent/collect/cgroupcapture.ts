/**
 * Capture of a whole cgroup: freeze → capture every process → pin the files →
 * thaw (or leave frozen) → leak check against the host → apply the leak
 * policy. The pod is frozen only while its tables are read; the host scan
 * runs after the thaw against pinned copies (pin.ts), so the freeze window is
 * the capture itself.
 */
import { readFileSync } from 'node:fs';
import { capture } from '../capture/index.js';
import type { CaptureOptions, CaptureResult } from '../capture/types.js';
import { KCMP_FILES, kcmp } from '../linux/kcmp.js';
import { listTasks, resolveCgroup, type Cgroup, type CgroupTasks } from '../cgroup/cgroup.js';
import { withFrozen, type AfterFreeze, type FreezeOptions } from '../cgroup/freeze.js';
import { excuseLauncherStdio, launchersOf } from './launcher-stdio.js';
import { findLeaks, type LeakOptions } from './leaks.js';
import { pinCollector } from './pin.js';
import { LeakError, type LeakPolicy, type LeakReport } from './report.js';

/** Steps of captureCgroup, reported to `onStep` (tests inject faults there). */
export type CgroupCaptureStep = 'frozen' | 'captured' | 'pinned' | 'thawed' | 'collected';

/** Options of captureCgroup(): capture's own, the leak policy, and what to do with the freezer. */
export interface CgroupCaptureOptions extends CaptureOptions, Pick<LeakOptions, 'podName'> {
  /** Default 'fail': refuse when a leak is found (the cgroup is thawed first). */
  leakPolicy?: LeakPolicy;
  /** Default 'thaw'. */
  after?: AfterFreeze;
  /** Do not freeze (preflight on a running pod): tables may change while read. */
  noFreeze?: boolean;
  /** Called after each step; a throw aborts the capture like any other error. */
  onStep?: (step: CgroupCaptureStep) => void;
  /**
   * Capture only these cgroups below `path` (a pod's chosen containers); the
   * whole of `path` is still frozen. Their tasks are the boundary for the leak
   * check: the other containers and the sandbox count as outside.
   */
  only?: readonly string[];
  /** Where the freeze is journaled and when its watchdog thaws (cgroup/freeze.ts). */
  freezeGuard?: Pick<FreezeOptions, 'journalDir' | 'watchdogMs'>;
}

/** The tasks of `cg`, or of the `only` cgroups (which must lie below it). */
function tasksOf(cg: Cgroup, only: readonly Cgroup[]): CgroupTasks {
  if (only.length === 0) return listTasks(cg);
  const pids = new Set<number>();
  const tids = new Set<number>();
  for (const c of only) {
    const t = listTasks(c);
    for (const p of t.pids) pids.add(p);
    for (const t2 of t.tids) tids.add(t2);
  }
  const byNumber = (a: number, b: number): number => a - b;
  return { pids: [...pids].sort(byNumber), tids: [...tids].sort(byNumber) };
}

/**
 * The refusal of policy 'fail', with the capture it refused: a caller that reports
 * (the agent daemon: counts, leaks and problems into status) needs what was found,
 * and must not ask for 'warn' and judge again itself.
 */
export class CgroupLeakError extends LeakError {
  constructor(
    readonly result: CgroupCaptureResult,
    report: LeakReport,
  ) {
    super(report, result.problems);
  }
}

/** A capture of a cgroup, with its tasks, leak report (unless ignored) and timings. */
export interface CgroupCaptureResult extends CaptureResult {
  cgroup: Cgroup;
  tasks: CgroupTasks;
  /** Undefined under policy 'ignore'. */
  leaks?: LeakReport;
  timings: {
    /** From the freeze request to the thaw (0 without freezing; up to the end of capture when left frozen). */
    frozenMs: number;
    freezeWaitMs: number;
    captureMs: number;
    collectMs: number;
    /** When the freeze was asked for (epoch ms); absent without freezing. */
    frozenAt?: number;
    /** When the thaw was asked for (epoch ms); absent without freezing, or when left frozen. */
    thawedAt?: number;
  };
}

/**
 * The tasks to capture: every process, plus each thread whose fd table is not
 * its process's (unshare(CLONE_FILES)); threads sharing it add nothing.
 */
export function tasksToCapture(tasks: CgroupTasks): number[] {
  const pids = new Set(tasks.pids);
  const out = [...tasks.pids];
  for (const tid of tasks.tids) {
    if (pids.has(tid)) continue;
    const tgid = tgidOf(tid);
    try {
      if (tgid === undefined || !pids.has(tgid) || kcmp(tgid, tid, KCMP_FILES, 0, 0) !== 0) out.push(tid);
    } catch {
      // The thread exited between listing and comparing.
    }
  }
  return out;
}

function tgidOf(tid: number): number | undefined {
  try {
    const m = /^Tgid:\s+(\d+)$/m.exec(readFileSync(`/proc/${tid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Freezes, captures, collects and applies the leak policy; see the module comment. */
export async function captureCgroup(
  path: string,
  options: CgroupCaptureOptions = {},
): Promise<CgroupCaptureResult> {
  const cg = resolveCgroup(path);
  const only = (options.only ?? []).map((p) => resolveCgroup(p));
  for (const o of only) {
    if (o.path !== cg.path && !o.path.startsWith(`${cg.path === '/' ? '' : cg.path}/`)) {
      throw new Error(`cgroup ${o.path} is not below ${cg.path}: it would not be frozen with it`);
    }
  }
  // Freezing a cgroup we are in would freeze us mid-capture, forever.
  if (listTasks(cg).tids.includes(process.pid)) {
    throw new Error(`cgroup ${cg.path} contains fdckpt itself (pid ${process.pid}): refusing to capture it`);
  }
  const policy = options.leakPolicy ?? 'fail';
  const step = options.onStep ?? ((): void => undefined);
  let captureMs = 0;
  // Capture keeps its copy of each file open for the leak check (pin.ts).
  const pinned = policy === 'ignore' ? undefined : pinCollector();
  const work = (): { tasks: CgroupTasks; result: CaptureResult; launchers: Map<number, string> } => {
    if (!options.noFreeze) step('frozen');
    const tasks = tasksOf(cg, only);
    if (tasks.pids.length === 0) throw new Error(`cgroup ${cg.path}: no processes to capture`);
    const t0 = performance.now();
    // The cgroup's freezer is the freeze here: ptrace would wait forever on a frozen task.
    const captureOptions: CaptureOptions = {
      ...options,
      source: options.source ?? `cgroup ${cg.path}`,
      stopTasks: false,
    };
    if (pinned) captureOptions.keepCopy = pinned.keepCopy;
    const result = capture(tasksToCapture(tasks), captureOptions);
    captureMs = performance.now() - t0;
    step('captured');
    step('pinned');
    // Parents read while the processes are frozen there (launcher-stdio.ts: the operator's rule too).
    return { tasks, result, launchers: launchersOf(tasks.pids) };
  };
  let frozenMs = 0;
  let freezeWaitMs = 0;
  let stamps: { frozenAt?: number; thawedAt?: number } = {};
  let leaks: LeakReport | undefined;
  let c0 = 0;
  let done: ReturnType<typeof work>;
  try {
    if (options.noFreeze) {
      done = work();
    } else {
      const r = await withFrozen(cg, work, options.after ?? 'thaw', options.freezeGuard ?? {});
      ({ frozenMs, freezeWaitMs } = r);
      stamps = { frozenAt: r.frozenAt, ...(r.thawedAt !== undefined ? { thawedAt: r.thawedAt } : {}) };
      done = r.value;
    }
    c0 = performance.now();
    if (!options.noFreeze) step('thawed');
    if (policy !== 'ignore') {
      const leakOptions: LeakOptions = { pinned: pinned?.fds };
      if (options.podName) leakOptions.podName = options.podName;
      leaks = excuseLauncherStdio(
        findLeaks(done.result.checkpoint, done.tasks.tids, leakOptions),
        done.launchers,
      );
      step('collected');
    }
  } finally {
    pinned?.release();
  }
  const { tasks, result } = done;
  const collectMs = performance.now() - c0;
  const out: CgroupCaptureResult = {
    ...result,
    cgroup: cg,
    tasks,
    ...(leaks ? { leaks } : {}),
    timings: { frozenMs, freezeWaitMs, captureMs, collectMs, ...stamps },
  };
  if (policy === 'fail' && leaks && leaks.leaks.length > 0) throw new CgroupLeakError(out, leaks);
  return out;
}
