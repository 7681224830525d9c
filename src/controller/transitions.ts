/**
 * What every reconciler does with its conditions on the way out: the terminal
 * Failed condition, and one event per condition transition.
 */
import type { Condition, ObjectMeta } from '../api/index.js';
import { CONDITIONS, findCondition, setCondition } from '../api/index.js';
import type { EventRecorder } from './events.js';

/**
 * A terminal failure is a condition of its own (as a Job's Failed), so that
 * `kubectl wait --for=condition=Failed` ends, and it says what Ready says.
 * Phases never leave Failed, so the condition is only ever added.
 */
export function withFailedCondition(
  conditions: Condition[] | undefined,
  failed: boolean,
  observedGeneration: number | undefined,
  now: Date,
): Condition[] | undefined {
  const ready = findCondition(conditions, CONDITIONS.Ready);
  if (!failed || !ready) return conditions;
  return setCondition(
    conditions,
    {
      type: CONDITIONS.Failed,
      status: 'True',
      reason: ready.reason,
      message: ready.message,
      observedGeneration,
    },
    now,
  );
}

/**
 * Every change of a condition's status or reason is told once. A Warning is for
 * what a user must act on: a terminal failure (Failed) or an invalid spec.
 * Waiting for a pod the controller itself created, or a migration in progress,
 * is Normal: a successful flow emits no Warning.
 */
export function announceTransitions(
  events: EventRecorder,
  obj: { kind?: string; metadata: ObjectMeta },
  before: readonly Condition[] | undefined,
  after: readonly Condition[] | undefined,
  types: readonly string[],
): void {
  const failed = findCondition(after, CONDITIONS.Failed)?.status === 'True';
  for (const type of [...types, CONDITIONS.Failed]) {
    const old = before?.find((c) => c.type === type);
    const now = after?.find((c) => c.type === type);
    if (!now || (old && old.status === now.status && old.reason === now.reason)) continue;
    // Failed carries Ready's reason and message: one event, not two.
    if (failed && type === CONDITIONS.Ready) continue;
    const warn = (type === CONDITIONS.Failed || type === CONDITIONS.InvalidSpec) && now.status === 'True';
    events.record(obj, warn ? 'Warning' : 'Normal', now.reason, `${type}=${now.status}: ${now.message}`);
  }
}
