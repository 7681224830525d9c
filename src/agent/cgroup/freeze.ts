/**
 * Freezing a cgroup so that its processes cannot change their fd tables while
 * we read them. v2: write cgroup.freeze, wait for `frozen 1` in cgroup.events.
 * v1: write freezer.state, wait until it reads FROZEN. The freezer is
 * asynchronous in both versions: a write only *starts* freezing.
 *
 * Whatever happens between freeze and the end of the work, the cgroup is thawed
 * unless the caller asked to leave it frozen and the work succeeded: withFrozen()
 * is the only way the engine freezes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { listTasks, type Cgroup } from './cgroup.js';

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
}

/**
 * Freezes the cgroup and resolves once the kernel says every task is frozen.
 * On timeout it thaws again and throws: a half-frozen pod is the worst outcome.
 */
export async function freeze(cg: Cgroup, options: FreezeOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const kind = freezerKind(cg);
  // Registered before the request: a signal while we wait for the kernel must thaw it too.
  activeFreezes.add(cg);
  try {
    if (kind === 'v2') write(join(cg.v2Dir!, 'cgroup.freeze'), '1');
    else write(join(cg.v1FreezerDir!, 'freezer.state'), 'FROZEN');
  } catch (err) {
    activeFreezes.delete(cg);
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

/** Thaws the cgroup (synchronous so that it can run in exit and signal handlers). */
export function thaw(cg: Cgroup): void {
  activeFreezes.delete(cg);
  if (freezerKind(cg) === 'v2') write(join(cg.v2Dir!, 'cgroup.freeze'), '0');
  else write(join(cg.v1FreezerDir!, 'freezer.state'), 'THAWED');
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
  await freeze(cg, options);
  const frozenAt = performance.now();
  let ok = false;
  try {
    const value = await work();
    ok = true;
    return { value, frozenMs: performance.now() - start, freezeWaitMs: frozenAt - start };
  } finally {
    if (ok && after === 'leave-frozen') activeFreezes.delete(cg);
    else {
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
const activeFreezes = new Set<Cgroup>();

let installed = false;

/** Thaws every cgroup this process froze or is freezing (what the exit and signal handlers run). */
export function thawActiveFreezes(): void {
  for (const cg of [...activeFreezes]) {
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
