/**
 * Replaying into a launcher that the agent did not start: a container runs
 * `fdckpt-hold -- CMD`, whose child (the held process) waits for SIGUSR1.
 * The agent finds that child in the container's cgroup, seizes it, lets it
 * exec, and runs the replay plan at the exec stop — as replay's restore()
 * does for a launcher it spawned itself.
 */
import { readProcStat } from '../linux/procstat.js';
import { PTRACE_EVENT_EXEC, PTRACE_O, killPid, ptraceCont, ptraceSeize } from '../linux/ptrace.js';
import { waitPid } from '../linux/wait.js';
import { runPlan } from '../replay/inject.js';
import { releaseHeld, type ListenRelease, type Plan } from '../replay/index.js';
import { NotReadyError } from './engine.js';

const SIGKILL = 9;
const SIGTRAP = 5;
const LAUNCHER_COMM = 'fdckpt-hold';

/** The held process among `pids`: an fdckpt-hold whose parent is the fdckpt-hold waiter. */
export function findHeldLauncher(pids: readonly number[]): number {
  const stats = new Map(pids.map((p) => [p, readProcStat(p)]));
  const held = pids.filter((p) => {
    const s = stats.get(p);
    return s?.comm === LAUNCHER_COMM && stats.get(s.ppid)?.comm === LAUNCHER_COMM;
  });
  if (held.length === 0) {
    // A container is Running from its first instruction; its launcher may still be starting.
    const seen = pids.map((p) => `${p} (${stats.get(p)?.comm ?? 'gone'})`).join(', ');
    throw new NotReadyError(`no waiting ${LAUNCHER_COMM} yet among pids ${seen || '(none)'}`);
  }
  if (held.length !== 1) {
    throw new Error(
      held.length === 0
        ? `no waiting ${LAUNCHER_COMM} among pids ${pids.join(', ') || '(none)'}: does the container run the launcher?`
        : `${held.length} waiting launchers (pids ${held.join(', ')}); expected one per container`,
    );
  }
  return held[0]!;
}

/**
 * Seize the held pid, let it exec, replay the plan; on any failure kill it (never
 * half-restored). `listen`: socket handoff's LISTEN_FDS (the release signal's value)
 * and LISTEN_FDNAMES (written into the launcher's names memfd first; replay/release.ts).
 */
export function replayIntoHeld(pid: number, plan: Plan, listen?: ListenRelease): void {
  try {
    ptraceSeize(pid, PTRACE_O.TRACEEXEC | PTRACE_O.EXITKILL);
    releaseHeld(pid, listen);
    for (;;) {
      const st = waitPid(pid);
      if (st.kind === 'exited') throw new Error(`launcher pid ${pid} exited with ${st.code} before exec`);
      if (st.kind === 'signaled')
        throw new Error(`launcher pid ${pid} was killed by signal ${st.signal} before exec`);
      if (st.signal === SIGTRAP && st.event === PTRACE_EVENT_EXEC) break;
      ptraceCont(pid, st.event === 0 ? st.signal : 0);
    }
    runPlan(pid, plan, true);
  } catch (err) {
    try {
      killPid(pid, SIGKILL);
      for (;;) if (waitPid(pid).kind !== 'stopped') break;
    } catch {
      // already gone
    }
    throw err;
  }
}
