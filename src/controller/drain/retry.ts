/**
 * When the drain watcher tries a pod's migration again. Everything is derived
 * from the pod's earlier drain Migrations (level-based: a restarted controller
 * reaches the same verdict): how many attempts there were, why the last one
 * failed, and when it ended.
 */
import type { Migration } from '../../api/index.js';
import { MIGRATION_CONDITIONS as MC, findCondition } from '../../api/index.js';

/** Label on a drain Migration: its attempt number for the pod, 1, 2, … (absent: 1). */
export const DRAIN_ATTEMPT_LABEL = 'fdckpt.io/drain-attempt';
/** Annotation on the last failed drain Migration of a pod once the watcher gave up: why. */
export const DRAIN_GAVE_UP_ANNOTATION = 'fdckpt.io/drain-gave-up';

export interface DrainRetryOptions {
  /** Further attempts after the first failed one. Default 3; 0: never retry. */
  retries?: number;
  /** Wait after the first failure; doubles after each further one. Default 30 s. */
  backoffMs?: number;
  /** The longest wait between two attempts. Default 5 min. */
  maxBackoffMs?: number;
}

export const DRAIN_RETRY_DEFAULTS = { retries: 3, backoffMs: 30_000, maxBackoffMs: 300_000 } as const;

/**
 * Migration failures that end the same way however often they are tried (the
 * same pod, spec and fds give the same answer), by the Migration's Ready
 * reason. Every other reason is retried: during a drain the alternative is
 * losing the table when the pod is evicted, and the attempts are bounded.
 */
export const PERMANENT_FAILURES: ReadonlySet<string> = new Set([
  'InvalidSpec',
  'SourcePodNotFound',
  'SourceNotRunning',
  // The target agent could not rebuild the table (an fd the policy refuses, a path missing
  // there); the next attempt would pick the same target.
  'ReplayFailed',
  // Someone deleted what the Migration owned: a person's decision, not a fault to retry over.
  'CheckpointGone',
  'RestoreGone',
]);

/**
 * CheckpointFailed is permanent when the capture refused the pod itself (the
 * Migration's Checkpointed condition carries the Checkpoint's reason).
 */
export const PERMANENT_CAPTURE_FAILURES: ReadonlySet<string> = new Set([
  'LeaksFound', // leaks with leakPolicy Fail
  'UnsupportedFds',
  'ContainerNotFound',
  'InvalidSpec',
]);

/** The attempt number of a drain Migration. */
export function attemptOf(m: Migration): number {
  const n = Number(m.metadata.labels?.[DRAIN_ATTEMPT_LABEL] ?? '1');
  return Number.isInteger(n) && n > 0 ? n : 1;
}

/** Why a Failed Migration must not be retried, or undefined when it may be. */
export function permanentFailure(m: Migration): string | undefined {
  const ready = findCondition(m.status?.conditions, MC.Ready);
  const reason = ready?.reason ?? 'Unknown';
  if (PERMANENT_FAILURES.has(reason)) return reason;
  if (reason === 'CheckpointFailed') {
    const captured = findCondition(m.status?.conditions, MC.Checkpointed);
    if (captured?.status === 'False' && PERMANENT_CAPTURE_FAILURES.has(captured.reason))
      return `${reason} (${captured.reason})`;
  }
  return undefined;
}

/** When a finished Migration ended: start + total (ms precision), else its last transition. */
export function endedAt(m: Migration): number {
  const started = Date.parse(m.status?.startedAt ?? '');
  const total = m.status?.timings?.totalMs;
  if (!Number.isNaN(started) && total !== undefined) return started + total;
  const times = (m.status?.conditions ?? [])
    .map((c) => Date.parse(c.lastTransitionTime))
    .filter((t) => !Number.isNaN(t));
  if (times.length > 0) return Math.max(...times);
  return Date.parse(m.metadata.creationTimestamp ?? '') || 0;
}

/** The wait after `failed` failed attempts: backoff, doubled each time, capped. */
export function backoffAfter(failed: number, options: DrainRetryOptions = {}): number {
  const base = options.backoffMs ?? DRAIN_RETRY_DEFAULTS.backoffMs;
  const cap = options.maxBackoffMs ?? DRAIN_RETRY_DEFAULTS.maxBackoffMs;
  return Math.min(base * 2 ** Math.max(0, failed - 1), cap);
}

export type RetryVerdict =
  { action: 'retry'; attempt: number; inMs: number } | { action: 'giveUp'; why: string };

/**
 * What to do about a pod whose drain Migrations all failed: `last` is the one
 * with the highest attempt number.
 */
export function retryVerdict(last: Migration, now: number, options: DrainRetryOptions = {}): RetryVerdict {
  const permanent = permanentFailure(last);
  const reason = findCondition(last.status?.conditions, MC.Ready)?.reason ?? 'Unknown';
  if (permanent) return { action: 'giveUp', why: `${permanent} is not retried` };
  const failed = attemptOf(last);
  const retries = options.retries ?? DRAIN_RETRY_DEFAULTS.retries;
  if (failed > retries)
    return {
      action: 'giveUp',
      why: `${failed} attempt(s) failed, the last with ${reason} (--drain-retries ${retries})`,
    };
  const due = endedAt(last) + backoffAfter(failed, options);
  return { action: 'retry', attempt: failed + 1, inMs: Math.max(0, due - now) };
}
