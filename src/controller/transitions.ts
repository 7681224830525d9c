/** Events for condition transitions: every change of a condition's status or reason is told once. */
import type { Condition, ObjectMeta } from '../api/index.js';
import type { EventRecorder } from './events.js';

const GOOD: Record<string, 'True' | 'False'> = { InvalidSpec: 'False' };

export function announceTransitions(
  events: EventRecorder,
  obj: { kind?: string; metadata: ObjectMeta },
  before: readonly Condition[] | undefined,
  after: readonly Condition[] | undefined,
  types: readonly string[],
): void {
  for (const type of types) {
    const old = before?.find((c) => c.type === type);
    const now = after?.find((c) => c.type === type);
    if (!now || (old && old.status === now.status && old.reason === now.reason)) continue;
    const good = now.status === (GOOD[type] ?? 'True') || now.status === 'Unknown';
    events.record(obj, good ? 'Normal' : 'Warning', now.reason, `${type}=${now.status}: ${now.message}`);
  }
}
