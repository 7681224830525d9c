/**
 * What every controller reconciler does with its status on the way out: the
 * terminal Failed condition, the write (only if something changed), and one
 * event per condition transition.
 */
import { CONDITIONS, findCondition } from '../api/index.js';
import type { EventRecorder } from '../kube/events.js';
import type { ResourceClient } from '../kube/client.js';
import type { Conditioned, StatusDraft } from '../kube/status.js';
import { saveStatus } from '../kube/status.js';

/**
 * A terminal failure is a condition of its own (as a Job's Failed), so that
 * `kubectl wait --for=condition=Failed` ends, and it says what Ready says.
 * Phases never leave Failed, so the condition is only ever added.
 */
export function addFailedCondition<T extends Conditioned>(draft: StatusDraft<T>): void {
  const ready = findCondition(draft.status.conditions, CONDITIONS.Ready);
  if (!ready) return;
  draft.setCondition({
    type: CONDITIONS.Failed,
    status: 'True',
    reason: ready.reason,
    message: ready.message,
  });
}

/**
 * Every change of a condition's status or reason is told once. A Warning is for
 * what a user must act on: a terminal failure (Failed) or an invalid spec.
 * Waiting for a pod the controller itself created, or a migration in progress,
 * is Normal: a successful flow emits no Warning.
 */
export function announceTransitions<T extends Conditioned & { kind?: string }>(
  events: EventRecorder,
  draft: StatusDraft<T>,
  types: readonly string[],
): void {
  const failed = findCondition(draft.status.conditions, CONDITIONS.Failed)?.status === 'True';
  for (const { type, after } of draft.transitions([...types, CONDITIONS.Failed])) {
    // Failed carries Ready's reason and message: one event, not two.
    if (failed && type === CONDITIONS.Ready) continue;
    const warn = (type === CONDITIONS.Failed || type === CONDITIONS.InvalidSpec) && after.status === 'True';
    events.record(
      draft.read,
      warn ? 'Warning' : 'Normal',
      after.reason,
      `${type}=${after.status}: ${after.message}`,
    );
  }
}

/**
 * Save the status a reconcile built: Failed added when `failed`, written only
 * if it differs from what was read, and then the transitions of `types` (and
 * Failed) announced. Returns whether it wrote. A conflict (409) is thrown, and
 * the key requeued: the next reconcile starts from a fresh read.
 */
export async function saveAndAnnounce<T extends Conditioned & { kind?: string }>(
  client: ResourceClient<T>,
  draft: StatusDraft<T>,
  events: EventRecorder,
  types: readonly string[],
  failed: boolean,
): Promise<boolean> {
  if (failed) addFailedCondition(draft);
  if (!(await saveStatus(client, draft))) return false;
  announceTransitions(events, draft, types);
  return true;
}
