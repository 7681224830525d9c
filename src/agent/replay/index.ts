/**
 * Replay: start a command with exactly the file table of a captured process.
 * See docs/replay.md for the design.
 */
import type { Checkpoint } from '../model.js';
import { PTRACE_EVENT_EXEC, PTRACE_O, killPid, ptraceCont, ptraceSeize } from '../linux/ptrace.js';
import { waitPid } from '../linux/wait.js';
import { ReplayError } from '../replay-steps/errors.js';
import { runPlan, type InjectStats } from './inject.js';
import { launchHeld, type HeldProcess, type LaunchOptions } from './launch.js';
import { planRestore, type Plan } from './plan.js';
import { stdioStartedWith } from './started-with.js';
import { DEFAULT_POLICY, type RestorePolicy } from './policy.js';
import { handOff } from './handoff.js';
import { releaseHeld, type ListenRelease } from './release.js';

export { ReplayError, ReplayRefusals, refusalsOf } from '../replay-steps/errors.js';
export {
  parsePolicy,
  replayPolicy,
  DEFAULT_POLICY,
  REPLAY_MODES,
  type ReplayMode,
  type RestorePolicy,
} from './policy.js';
export { planRestore, type Plan } from './plan.js';
export { stdioOfProcess, stdioStartedWith } from './started-with.js';
export { handOff, LISTEN_FDS_START, type Handoff } from './handoff.js';
export { waitSettled } from './settle.js';
export { releaseHeld, type ListenRelease } from './release.js';

const SIGKILL = 9;
const SIGTRAP = 5;

/** Options for restore(). */
export interface RestoreOptions extends LaunchOptions {
  /** Which captured process's table (default: the image's first process). */
  pid?: number;
  policy?: RestorePolicy;
  /** Run the steps in bulk inside the target (default) or one ptrace round trip each. */
  batch?: boolean;
  /**
   * Socket handoff: the listening sockets go to fds 3… with LISTEN_FDS, LISTEN_PID and
   * LISTEN_FDNAMES set (see handoff.ts); build the policy with replayPolicy(…, {listenFds}).
   */
  listenFds?: boolean;
  /**
   * For tests only: called at the exec stop, after validation and before the target
   * opens anything, so that a test can swap a path inside that window and see the
   * restore refuse what was opened (inject.ts verifyOpened). Nothing else sets it.
   */
  beforeInject?: (pid: number) => void;
}

/** Where the time of one restore went, in ms. */
export interface RestoreTimings {
  /** Validation and planning (the launcher is being spawned meanwhile; the target program does not exist yet). */
  plan: number;
  /** Waiting for the held pid after planning (the launcher starts before planning). */
  launch: number;
  /** Seize, release, until the exec stop. */
  exec: number;
  /** Exec stop to detach (see InjectStats for its parts). */
  inject: number;
}

/** A restored, running program. */
export interface Restored extends HeldProcess {
  plan: Plan;
  stats: InjectStats;
  timings: RestoreTimings;
}

function msSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/**
 * Lets the held process exec and waits for its exec stop. `listen`: socket handoff's
 * LISTEN_FDS and LISTEN_FDNAMES, passed with the release (see release.ts).
 */
export function releaseToExec(pid: number, listen?: ListenRelease): void {
  ptraceSeize(pid, PTRACE_O.TRACEEXEC | PTRACE_O.EXITKILL);
  releaseHeld(pid, listen);
  for (;;) {
    const st = waitPid(pid);
    if (st.kind === 'exited')
      throw new Error(`target pid ${pid} exited with ${st.code} before exec (see its stderr)`);
    if (st.kind === 'signaled')
      throw new Error(`target pid ${pid} was killed by signal ${st.signal} before exec`);
    if (st.signal === SIGTRAP && st.event === PTRACE_EVENT_EXEC) return;
    ptraceCont(pid, st.event === 0 ? st.signal : 0);
  }
}

/** Kills a tracee that must not run half-restored, and reaps it as its tracer. */
function killTarget(pid: number): void {
  try {
    killPid(pid, SIGKILL);
    for (;;) {
      const st = waitPid(pid);
      if (st.kind !== 'stopped') break;
    }
  } catch {
    // Already gone (or no longer traced): nothing left to stop.
  }
}

/** Kills a launched process that never got to exec CMD (it is not traced yet). */
async function discard(launching: Promise<HeldProcess>): Promise<void> {
  const held = await launching.catch(() => undefined);
  if (!held) return;
  try {
    killPid(held.pid, SIGKILL);
  } catch {
    // already gone
  }
  await held.exit.catch(() => undefined);
}

/**
 * Validates the table of one process of `cp`, starts `cmd` held, replays the
 * table into it at its exec, and lets it run. On any failure the target is
 * killed and the error (a ReplayError naming the fd, for a file) is thrown.
 * The ptrace work runs synchronously on the calling thread.
 */
export async function restore(
  cp: Checkpoint,
  cmd: readonly string[],
  options: RestoreOptions = {},
): Promise<Restored> {
  // The launcher starts while we validate and plan (it only waits; CMD is not exec'd
  // until the plan exists), which hides its spawn time. A failed check discards it.
  let t0 = process.hrtime.bigint();
  const policy = options.policy ?? DEFAULT_POLICY;
  const handoff = options.listenFds ? handOff(cp, policy, options.pid) : undefined;
  const launching = launchHeld(cmd, options);
  launching.catch(() => undefined); // awaited below on both paths
  let plan: Plan;
  try {
    plan = planRestore(
      handoff?.cp ?? cp,
      policy,
      options.pid,
      undefined,
      stdioStartedWith(options.stdio ?? 'inherit'),
    );
  } catch (err) {
    await discard(launching);
    throw err;
  }
  const timings: RestoreTimings = { plan: msSince(t0), launch: 0, exec: 0, inject: 0 };
  t0 = process.hrtime.bigint();
  const held = await launching;
  timings.launch = msSince(t0);
  try {
    t0 = process.hrtime.bigint();
    releaseToExec(held.pid, handoff);
    timings.exec = msSince(t0);
    options.beforeInject?.(held.pid);
    const stats = runPlan(held.pid, plan, options.batch ?? true);
    timings.inject = stats.ms;
    return { ...held, plan, stats, timings };
  } catch (err) {
    killTarget(held.pid);
    const status = await held.exit.catch(() => undefined);
    if (err instanceof ReplayError) err.targetPid = held.pid;
    // Seizing a launcher that already gave up (its timeout, status 125) fails with ESRCH:
    // say what happened rather than what ptrace saw.
    if ((err as { code?: string }).code === 'ESRCH' && status !== undefined && status !== 137) {
      throw new Error(`the launcher of pid ${held.pid} exited with status ${status} before it was seized`, {
        cause: err,
      });
    }
    throw err;
  }
}
