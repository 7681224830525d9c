/**
 * Freezing a cgroup so that its processes cannot change their fd tables while
 * we read them. v2: write cgroup.freeze, wait for `frozen 1` in cgroup.events.
 * v1: write freezer.state, wait until it reads FROZEN. The freezer is
 * asynchronous in both versions: a write only *starts* freezing.
 *
 * Whatever happens between freeze and the end of the work, the cgroup is thawed
 * unless the caller asked to leave it frozen and the work succeeded: withFrozen()
 * is the only way the engine freezes. Three layers make sure of it: the
 * `finally` and signal handlers of this process; a watchdog process that thaws
 * on a deadline even when this thread is stuck in a syscall (watchdog.ts); and
 * the freeze journal that a later run thaws from when this process was killed
 * (journal.ts).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { listTasks, type Cgroup } from './cgroup.js';
import { defaultJournalDir, forgetFreeze, recordFreeze } from './journal.js';
import { DEFAULT_WATCHDOG_MS, startWatchdog, type Watchdog } from './watchdog.js';

/** Which freezer a cgroup uses: v2 when the cgroup exists in the v2 hierarchy. */
export function freezerKind(cg: Cgroup): 'v2' | 'v1' {
  if (cg.v2Dir !== undefined) return 'v2';
  if (cg.v1FreezerDir !== undefined) return 'v1';
  throw new Error(`cgroup ${cg.path}: neither in cgroup2 nor in the v1 freezer hierarchy`);
}

function write(file: string, value: string): void {
  try {
    writeFileSync(file, value);
  } catch (err) {
    throw new Error(
      `write ${JSON.stringify(value)} to ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}

/** Current state: true when the kernel reports the whole cgroup frozen. */
export function isFrozen(cg: Cgroup): boolean {
  if (freezerKind(cg) === 'v2')
    return /^frozen 1$/m.test(readFileSync(join(cg.v2Dir!, 'cgroup.events'), 'utf8'));
  return readFileSync(join(cg.v1FreezerDir!, 'freezer.state'), 'utf8').trim() === 'FROZEN';
}

/** Options for freeze(). */
export interface FreezeOptions {
  /** Give up (and thaw) after this long. Default 10 s. */
  timeoutMs?: number;
  /** Fault injection for tests: runs right after the freeze is requested, before the wait. */
  afterRequest?: () => void;
  /** Where the freeze is journaled (default: setFreezeDefaults, else defaultJournalDir()). */
  journalDir?: string;
  /** The watchdog thaws this long after the freeze request, whatever happens (default 30 s). */
  watchdogMs?: number;
}

/** Process-wide defaults of journalDir and watchdogMs (the agent sets its data directory's). */
const defaults: Pick<FreezeOptions, 'journalDir' | 'watchdogMs'> = {};

/** Sets the process-wide journal directory and watchdog deadline. */
export function setFreezeDefaults(values: Pick<FreezeOptions, 'journalDir' | 'watchdogMs'>): void {
  Object.assign(defaults, values);
}

/** The journal directory freezes of this process use. */
export function freezeJournalDir(options: FreezeOptions = {}): string {
  return options.journalDir ?? defaults.journalDir ?? defaultJournalDir();
}

/** What guards one freeze of this process until its thaw: its journal entry and watchdog. */
interface Guard {
  journalEntry: string;
  watchdog: Watchdog;
  watchdogMs: number;
}

function freezerFile(cg: Cgroup): { file: string; thawValue: string } {
  return freezerKind(cg) === 'v2'
    ? { file: join(cg.v2Dir!, 'cgroup.freeze'), thawValue: '0' }
    : { file: join(cg.v1FreezerDir!, 'freezer.state'), thawValue: 'THAWED' };
}

/** Journals the freeze (fsynced) and starts its watchdog: both before the freeze is requested. */
function guardFreeze(cg: Cgroup, options: FreezeOptions): Guard {
  const { file, thawValue } = freezerFile(cg);
  const journalEntry = recordFreeze(freezeJournalDir(options), { cgroup: cg.path, file, thawValue });
  const watchdogMs = options.watchdogMs ?? defaults.watchdogMs ?? DEFAULT_WATCHDOG_MS;
  try {
    return { journalEntry, watchdog: startWatchdog(file, thawValue, watchdogMs, journalEntry), watchdogMs };
  } catch (err) {
    forgetFreeze(journalEntry);
    throw err;
  }
}

/** The freeze no longer needs guarding (thawed, or handed over frozen). */
function releaseGuard(guard: Guard | undefined): void {
  if (!guard) return;
  guard.watchdog.cancel();
  forgetFreeze(guard.journalEntry);
}

/**
 * Freezes the cgroup and resolves once the kernel says every task is frozen.
 * On timeout it thaws again and throws: a half-frozen pod is the worst outcome.
 */
export async function freeze(cg: Cgroup, options: FreezeOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const kind = freezerKind(cg);
  // Registered before the request: a signal while we wait for the kernel must thaw it too.
  const guard = guardFreeze(cg, options);
  activeFreezes.set(cg, guard);
  try {
    if (kind === 'v2') write(join(cg.v2Dir!, 'cgroup.freeze'), '1');
    else write(join(cg.v1FreezerDir!, 'freezer.state'), 'FROZEN');
  } catch (err) {
    activeFreezes.delete(cg);
    releaseGuard(guard);
    throw err;
  }
  options.afterRequest?.();
  const deadline = Date.now() + timeoutMs;
  // Start with sub-millisecond polls: an idle cgroup freezes in microseconds, and
  // every millisecond spent here is a millisecond the pod stays frozen.
  let waitMs = 0;
  while (!isFrozen(cg)) {
    // Thawed while we waited (the exit/signal handlers): never re-request the freeze.
    if (!activeFreezes.has(cg))
      throw new Error(`freezing cgroup ${cg.path}: thawed while waiting; cancelled`);
    if (Date.now() > deadline) {
      thaw(cg);
      throw new Error(`freezing cgroup ${cg.path} (${kind}): not frozen after ${timeoutMs} ms; thawed again`);
    }
    if (kind === 'v1') write(join(cg.v1FreezerDir!, 'freezer.state'), 'FROZEN');
    await sleep(waitMs);
    waitMs = Math.min(waitMs * 2 + 1, 50);
  }
}

/**
 * Thaws the cgroup (synchronous so that it can run in exit and signal handlers).
 * The journal entry and watchdog go only once the thaw is written: a failed
 * thaw leaves both to try again.
 */
export function thaw(cg: Cgroup): void {
  const guard = activeFreezes.get(cg);
  activeFreezes.delete(cg);
  const { file, thawValue } = freezerFile(cg);
  write(file, thawValue);
  releaseGuard(guard);
}

/** True when the watchdog of this freeze fired (it removes the journal entry when it thaws). */
function watchdogFired(guard: Guard | undefined): boolean {
  return guard !== undefined && !existsSync(guard.journalEntry);
}

/**
 * What to do with the cgroup after the work succeeded: thaw it, leave it
 * frozen, or stop its processes (SIGSTOP, queued while frozen, taken on the
 * thaw) so that they stay put but can be resumed with SIGCONT or killed.
 */
export type AfterFreeze = 'thaw' | 'leave-frozen' | 'stop';

/** The frozen window, for reports: how long the cgroup was frozen. */
export interface FrozenResult<T> {
  value: T;
  /** From the freeze request to the thaw (or to the end of the work when left frozen). */
  frozenMs: number;
  /** Part of frozenMs spent waiting for the kernel to finish freezing. */
  freezeWaitMs: number;
  /** When the freeze was asked for (epoch ms): a migration's downtime starts there. */
  frozenAt: number;
  /** When the thaw was asked for (epoch ms); absent when the cgroup was left frozen. */
  thawedAt?: number;
}

/**
 * Runs `work` with the cgroup frozen. Thaws on every error path (a throw, a
 * rejected promise, a failed freeze); leaves it frozen only if `after` says so
 * and `work` succeeded.
 */
export async function withFrozen<T>(
  cg: Cgroup,
  work: () => T | Promise<T>,
  after: AfterFreeze = 'thaw',
  options: FreezeOptions = {},
): Promise<FrozenResult<T>> {
  const start = performance.now();
  // Wall-clock stamps for other machines to compare with; durations come from the monotonic clock.
  const frozenAtEpoch = Date.now();
  await freeze(cg, options);
  const frozenAt = performance.now();
  let ok = false;
  const guard = activeFreezes.get(cg);
  try {
    const value = await work();
    // Whatever the work read after the watchdog thawed may have changed under it.
    if (watchdogFired(guard)) {
      throw new Error(
        `cgroup ${cg.path} was thawed by the watchdog after ${guard!.watchdogMs} ms: ` +
          'the work ran on a thawed pod and is discarded',
      );
    }
    ok = true;
    const frozenMs = performance.now() - start;
    const thawed = after === 'leave-frozen' ? {} : { thawedAt: Date.now() };
    return { value, frozenMs, freezeWaitMs: frozenAt - start, frozenAt: frozenAtEpoch, ...thawed };
  } finally {
    if (ok && after === 'leave-frozen') {
      // Handed over frozen, on purpose: whoever asked for it owns the thaw now.
      activeFreezes.delete(cg);
      releaseGuard(guard);
    } else {
      try {
        if (ok && after === 'stop') stopAll(cg);
      } finally {
        thaw(cg);
      }
    }
  }
}

/** SIGSTOP to every process of the cgroup (a process-directed signal stops all its threads). */
function stopAll(cg: Cgroup): void {
  for (const pid of listTasks(cg).pids) {
    try {
      process.kill(pid, 'SIGSTOP');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

/**
 * Cgroups frozen by this process and not yet thawed or handed over. If the
 * process is killed by SIGINT/SIGTERM mid-capture, installEmergencyThaw()'s
 * handlers thaw them before exiting.
 */
const activeFreezes = new Map<Cgroup, Guard>();

let installed = false;

/** Thaws every cgroup this process froze or is freezing (what the exit and signal handlers run). */
export function thawActiveFreezes(): void {
  for (const cg of [...activeFreezes.keys()]) {
    try {
      thaw(cg);
    } catch {
      // Best effort: we are exiting; the caller reports why.
    }
  }
}

/** Thaws every cgroup this process froze if it is interrupted (CLI use). Idempotent. */
export function installEmergencyThaw(): void {
  if (installed) return;
  installed = true;
  const thawAll = thawActiveFreezes;
  process.on('exit', thawAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      thawAll();
      process.kill(process.pid, signal);
    });
  }
}
