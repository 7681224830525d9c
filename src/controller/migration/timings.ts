/**
 * status.timings of a Migration (docs/migration.md, "Timings"): the agents'
 * figures copied from the Checkpoint and the Restore, and the downtime from
 * the agents' own timestamps (freeze asked on the source → program let go on
 * the target), else the controller's observations as a lower bound.
 */
import type { Checkpoint, MigrationStatus, Restore } from '../../api/index.js';
import { msBetween } from './placement.js';

/** The source agent's figures, once its Checkpoint is Ready. */
export function captureTimings(status: MigrationStatus, ckpt: Checkpoint, now: Date): void {
  status.capturedAt ??= now.toISOString();
  if (ckpt.status?.durations?.frozenAt) status.frozenAt = ckpt.status.durations.frozenAt;
  status.timings = {
    ...status.timings,
    freezeMs: ckpt.status?.durations?.freezeMs,
    captureMs: ckpt.status?.durations?.captureMs,
  };
}

/** The target agent's figures and the downtime, once the Restore is Ready and its pod runs. */
export function restoreTimings(status: MigrationStatus, restore: Restore, now: Date): void {
  status.restoredAt ??= now.toISOString();
  const durations = restore.status?.durations;
  status.timings = {
    ...status.timings,
    transferMs: durations?.transferMs ?? 0,
    restoreMs: durations?.replayMs,
    // The agents' clocks: freeze asked → program let go. Else the controller's view (a lower bound).
    downtimeMs:
      msBetween(status.frozenAt, durations?.replayedAt) ??
      (status.timings?.freezeMs ?? 0) + (msBetween(status.capturedAt, status.restoredAt) ?? 0),
  };
}

/** Start → Succeeded/Failed. */
export function totalTimings(status: MigrationStatus, now: Date): void {
  status.timings = { ...status.timings, totalMs: msBetween(status.startedAt, now.toISOString()) };
}
