/**
 * Stops every thread of the processes a `--pid` capture reads, so that none can
 * change its fd table while it is read (a cgroup capture uses the cgroup's
 * freezer instead). PTRACE_SEIZE + PTRACE_INTERRUPT rather than SIGSTOP: a
 * seized tracee is let go by the kernel when its tracer dies, so a SIGKILLed
 * CLI leaves nothing stopped, and neither the target nor its parent sees a stop
 * signal. Threads are seized one by one; a running thread may clone another
 * meanwhile, so /proc/PID/task is listed again until a pass finds no new task
 * (a stopped task cannot clone).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { PTRACE_EVENT_STOP, ptraceDetach, ptraceInterrupt, ptraceSeize } from '../linux/ptrace.js';
import { waitPidNoHang, type WaitStatus } from '../linux/wait.js';
import { isGone } from '../linux/errors.js';
import { CaptureError } from './errors.js';

/** How long one task may take to stop (a task in uninterruptible sleep stops only when it wakes). */
const DEFAULT_STOP_TIMEOUT_MS = 10_000;

interface Task {
  tgid: number;
  tid: number;
  /** Waited for in its stop; only a stopped tracee can be detached. */
  stopped: boolean;
  /** A signal the tracee was about to take when it stopped: given back at detach. */
  signal: number;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

function readStatus(tgid: number, tid: number): string {
  return readFileSync(`/proc/${tgid}/task/${tid}/status`, 'utf8');
}

function statusField(status: string, name: string): string | undefined {
  return new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1];
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

function who(task: { tgid: number; tid: number }): string {
  return task.tid === task.tgid ? `pid ${task.tgid}` : `pid ${task.tgid} (thread ${task.tid})`;
}

/** The stopped tasks of one capture; thaw() resumes them all. */
export class TaskFreeze {
  private readonly tasks = new Map<number, Task>();
  private startedAt = 0;

  private constructor(private readonly timeoutMs: number) {}

  /**
   * Stops every thread of the thread groups of `pids` and returns once all are
   * stopped. On any failure it resumes what it stopped and throws a
   * CaptureError naming the process (a tracer already attached, the process gone).
   */
  static stop(pids: readonly number[], timeoutMs = DEFAULT_STOP_TIMEOUT_MS): TaskFreeze {
    const freeze = new TaskFreeze(timeoutMs);
    try {
      for (const tgid of new Set(pids.map(tgidOf))) freeze.stopGroup(tgid);
    } catch (err) {
      try {
        freeze.thaw();
      } catch {
        // The first error says why; thaw() has resumed every task it could.
      }
      throw err;
    }
    return freeze;
  }

  private stopGroup(tgid: number): void {
    for (;;) {
      let tids: number[];
      try {
        tids = readdirSync(`/proc/${tgid}/task`).map(Number);
      } catch (err) {
        if (isGone(err)) throw new CaptureError(`pid ${tgid} exited during capture`, { cause: err });
        throw err;
      }
      const fresh = tids.filter((tid) => !this.tasks.has(tid));
      if (fresh.length === 0) return;
      for (const tid of fresh) this.stopTask(tgid, tid);
    }
  }

  private stopTask(tgid: number, tid: number): void {
    let status: string;
    try {
      status = readStatus(tgid, tid);
    } catch (err) {
      if (isGone(err) && tid !== tgid) return; // the thread exited: nothing of it to stop
      throw new CaptureError(`pid ${tgid} exited during capture`, { cause: err });
    }
    // A zombie leader (it called pthread_exit) never stops; its table lives on in the other threads.
    if (/^[ZX]/.test(statusField(status, 'State') ?? '')) return;
    const tracer = Number(statusField(status, 'TracerPid') ?? 0);
    if (tracer !== 0) {
      throw new CaptureError(
        `${who({ tgid, tid })} is already traced by pid ${tracer} (${commOf(tracer)}): ` +
          'cannot stop it for the capture; detach the tracer, or capture without freezing',
      );
    }
    const task: Task = { tgid, tid, stopped: false, signal: 0 };
    try {
      ptraceSeize(tid, 0);
    } catch (err) {
      if (isGone(err) && tid !== tgid) return;
      throw new CaptureError(`cannot stop ${who(task)} for the capture: ${(err as Error).message}`, {
        cause: err,
      });
    }
    this.tasks.set(tid, task);
    if (this.startedAt === 0) this.startedAt = performance.now();
    try {
      ptraceInterrupt(tid);
    } catch (err) {
      if (!isGone(err) || tid === tgid) throw err;
      this.tasks.delete(tid); // the thread exited since the seize
      return;
    }
    this.waitStop(task);
  }

  /** Waits for the tracee's stop; forgets a task that died instead. */
  private waitStop(task: Task): void {
    const deadline = performance.now() + this.timeoutMs;
    let waitMs = 0;
    for (;;) {
      const st: WaitStatus | undefined = waitPidNoHang(task.tid);
      if (st?.kind === 'stopped') {
        task.stopped = true;
        // Not our interrupt's stop but a signal's: hand that signal back when we let go.
        if (st.event !== PTRACE_EVENT_STOP) task.signal = st.signal;
        return;
      }
      if (st !== undefined) {
        this.tasks.delete(task.tid);
        if (task.tid === task.tgid) throw new CaptureError(`pid ${task.tgid} exited during capture`);
        return;
      }
      if (performance.now() > deadline)
        throw new CaptureError(`${who(task)} did not stop within ${this.timeoutMs} ms (state D?)`);
      sleepSync(waitMs);
      waitMs = Math.min(waitMs * 2 + 1, 20);
    }
  }

  /**
   * Resumes every stopped task (PTRACE_DETACH, giving back a signal it was
   * about to take) and returns the milliseconds from the first stop request to
   * the last resume. Tries every task; throws the first failure after that.
   */
  thaw(): number {
    let first: Error | undefined;
    for (const task of this.tasks.values()) {
      try {
        // A seized tracee must be in a stop before it can be detached.
        if (!task.stopped) {
          ptraceInterrupt(task.tid);
          this.waitStop(task);
        }
        if (this.tasks.has(task.tid)) ptraceDetach(task.tid, task.signal);
      } catch (err) {
        if (!isGone(err)) first ??= err as Error;
      }
    }
    this.tasks.clear();
    const ms = this.startedAt === 0 ? 0 : performance.now() - this.startedAt;
    if (first !== undefined) throw first;
    return ms;
  }
}

function tgidOf(pid: number): number {
  try {
    return Number(statusField(readFileSync(`/proc/${pid}/status`, 'utf8'), 'Tgid'));
  } catch (err) {
    if (isGone(err))
      throw new CaptureError(`pid ${pid} exited during capture (no such process)`, { cause: err });
    throw err;
  }
}
