/**
 * The Checkpointable verdict, from what the agent reported (problems, leaks,
 * Captured, LeakFree) and the spec's leakPolicy. A pure function of the status.
 */
import type { Checkpoint, CheckpointStatus, ConditionInput } from '../api/index.js';
import { CONDITIONS, findCondition } from '../api/index.js';

/** The problems a status lists, for a message: a few, and how many more. */
function firstProblems(status: CheckpointStatus, shown = 3): string {
  const items = status.problems?.items ?? [];
  const total = status.problems?.total ?? items.length;
  const list = items
    .slice(0, shown)
    .map((p) => p.message)
    .join('; ');
  return total > shown ? `${list}; and ${total - shown} more in status.problems` : list;
}

/**
 * Checkpointable: could this pod be checkpointed consistently, as the spec asks?
 * A dry run's answer (its Ready only says that the dry run ended); for a real
 * capture the same verdict beside Ready. Unsupported fds always block; leaks
 * block under leakPolicy Fail only.
 */
export function verdict(
  ckpt: Checkpoint,
  status: CheckpointStatus,
): Omit<ConditionInput, 'observedGeneration'> {
  const captured = findCondition(status.conditions, CONDITIONS.Captured);
  const leakFree = findCondition(status.conditions, CONDITIONS.LeakFree);
  const problems = status.problems?.total ?? 0;
  const leaks = status.leaks?.total ?? 0;
  const policy = ckpt.spec.leakPolicy ?? 'Fail';
  const type = CONDITIONS.Checkpointable;
  if (problems > 0) {
    return {
      type,
      status: 'False',
      reason: 'UnsupportedFds',
      message: `${problems} fd(s) cannot be restored: ${firstProblems(status)}`,
    };
  }
  if (captured?.status === 'False')
    return { type, status: 'Unknown', reason: captured.reason, message: `not captured: ${captured.message}` };
  if (leakFree?.status === 'False' && policy === 'Fail') {
    return {
      type,
      status: 'False',
      reason: 'LeaksFound',
      message: `${leaks} leak(s) across the pod boundary (leakPolicy Fail): ${leakFree.message}`,
    };
  }
  if (leakFree?.status === 'False') {
    return {
      type,
      status: 'True',
      reason: 'LeaksAccepted',
      message: `every fd can be restored; ${leaks} leak(s) accepted by leakPolicy ${policy}`,
    };
  }
  return {
    type,
    status: 'True',
    reason: 'Checkpointable',
    message: `every fd can be restored${leakFree?.status === 'True' ? ' and nothing leaks' : ''}`,
  };
}
