/**
 * Runs a level-based reconciler over a workqueue: N workers take keys, call
 * reconcile(key), and translate the outcome into queue operations.
 */
import type { Logger } from './log.js';
import type { WorkQueue } from './workqueue.js';
import { TerminalError, errorMessage } from './errors.js';

/** What a reconcile asks for next. */
export interface Result {
  /** Look again after this long (polling what is not watched, TTLs, waiting on others). */
  requeueAfterMs?: number;
}

export interface Reconciler {
  /** The kind this reconciler drives, for logs and metrics. */
  readonly kind: string;
  reconcile(key: string): Promise<Result>;
}

/** Called after every reconcile, for metrics. */
export interface ReconcileObserver {
  observe(kind: string, outcome: 'success' | 'error' | 'terminal', seconds: number): void;
}

export interface RunOptions {
  workers?: number;
  log: Logger;
  observer?: ReconcileObserver;
}

/**
 * Process keys until the queue shuts down. Resolves when every worker has
 * finished its current key (graceful shutdown waits for in-flight work).
 */
export async function runWorkers(
  queue: WorkQueue,
  reconciler: Reconciler,
  options: RunOptions,
): Promise<void> {
  const workers = Array.from({ length: options.workers ?? 2 }, () => worker(queue, reconciler, options));
  await Promise.all(workers);
}

async function worker(queue: WorkQueue, reconciler: Reconciler, options: RunOptions): Promise<void> {
  for (;;) {
    const key = await queue.get();
    if (key === undefined) return;
    await processOne(queue, reconciler, key, options);
  }
}

/** One reconcile of one key, with the error model applied. Exported for step-by-step tests. */
export async function processOne(
  queue: WorkQueue,
  reconciler: Reconciler,
  key: string,
  options: RunOptions,
): Promise<void> {
  const start = process.hrtime.bigint();
  const seconds = (): number => Number(process.hrtime.bigint() - start) / 1e9;
  try {
    const result = await reconciler.reconcile(key);
    queue.forget(key);
    const took = seconds();
    options.observer?.observe(reconciler.kind, 'success', took);
    // Every reconcile, for following one object's progress at --log-level debug.
    options.log.debug(`${reconciler.kind} ${key}: reconciled`, {
      kind: reconciler.kind,
      key,
      seconds: took,
      ...(result.requeueAfterMs !== undefined ? { requeueAfterMs: result.requeueAfterMs } : {}),
    });
    if (result.requeueAfterMs !== undefined) queue.addAfter(key, result.requeueAfterMs);
  } catch (err) {
    if (err instanceof TerminalError) {
      queue.forget(key);
      options.observer?.observe(reconciler.kind, 'terminal', seconds());
      options.log.warn(`${reconciler.kind} ${key}: not retried: ${err.message}`);
    } else {
      options.observer?.observe(reconciler.kind, 'error', seconds());
      options.log.warn(`${reconciler.kind} ${key}: ${errorMessage(err)} (retry ${queue.retries(key) + 1})`);
      queue.addRateLimited(key);
    }
  } finally {
    queue.done(key);
  }
}
