/**
 * How many pods this agent holds frozen, for fdckpt_agent_frozen_pods: the
 * captures it is running (each journals its freeze before asking for it,
 * src/agent/cgroup/journal.ts), plus the pods it left frozen on purpose — a
 * Ready Checkpoint with afterCapture Stop (a migration's source) that has not
 * been thawed — whose cgroup is still frozen (a migrated source is deleted
 * with its cgroup). Read from the informer's cache and /sys at scrape time, so
 * an agent restarted while a source waits still counts it.
 */
import type { Checkpoint } from '../../api/index.js';
import { THAWED_CONDITION, findCondition } from '../../api/index.js';
import { freezeJournalOf, journaledBy } from '../cgroup/journal.js';
import type { NodeEngine } from './engine.js';

export interface FrozenPodsSource {
  nodeName: string;
  dataDir: string;
  engine: NodeEngine;
  /** The Checkpoints assigned to this node (the agent's cache). */
  checkpoints: () => Checkpoint[];
}

/** Left frozen by this node's agent and not thawed since, as far as the API says. */
function leftFrozen(ckpt: Checkpoint, nodeName: string): boolean {
  return (
    ckpt.spec.afterCapture === 'Stop' &&
    ckpt.status?.nodeName === nodeName &&
    ckpt.status.phase === 'Ready' &&
    !findCondition(ckpt.status.conditions, THAWED_CONDITION) &&
    ckpt.status.podUID !== undefined
  );
}

/** The count, now. */
export function frozenPods(source: FrozenPodsSource): number {
  // This process's journal entries in this agent's data directory: several agents share
  // one process on the local control plane, each with its own directory.
  const capturing = journaledBy(freezeJournalOf(source.dataDir), process.pid).length;
  const isFrozen = source.engine.isPodFrozen?.bind(source.engine);
  if (!isFrozen) return capturing;
  const uids = new Set(
    source
      .checkpoints()
      .filter((c) => leftFrozen(c, source.nodeName))
      .map((c) => c.status!.podUID!),
  );
  return capturing + [...uids].filter((uid) => isFrozen(uid)).length;
}
