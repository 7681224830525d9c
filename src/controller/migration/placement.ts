/**
 * Which node a migrated pod may go to, and what the Migration creates there:
 * the owner reference and the transfer token.
 */
import type { V1Node, V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import type { Migration } from '../../api/index.js';
import { API_VERSION, MIGRATION } from '../../api/index.js';

/** True when new pods may land on the node: Ready, not cordoned, no NoSchedule/NoExecute taint. */
export function schedulable(node: V1Node): boolean {
  if (node.metadata?.deletionTimestamp) return false;
  if (node.spec?.unschedulable) return false;
  if ((node.spec?.taints ?? []).some((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute'))
    return false;
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  return ready?.status === 'True';
}

/** Why `node` cannot take the pod, or undefined when it can. */
export function unusableReason(node: V1Node): string | undefined {
  const name = node.metadata?.name ?? '';
  if (node.spec?.unschedulable) return `node ${name} is cordoned`;
  const taint = (node.spec?.taints ?? []).find((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute');
  if (taint) return `node ${name} has the taint ${taint.key}:${taint.effect}`;
  if (!schedulable(node)) return `node ${name} is not Ready`;
  return undefined;
}

/**
 * The target: the requested node if usable, else the first usable node other
 * than the source in name order (deterministic, so a retried reconcile picks
 * the same one). Returns the node name or why there is none.
 */
export function chooseTarget(
  nodes: readonly V1Node[],
  source: string,
  requested?: string,
): { node: string } | { error: string } {
  if (requested !== undefined) {
    if (requested === source) return { error: `the pod already runs on ${requested}` };
    const node = nodes.find((n) => n.metadata?.name === requested);
    if (!node) return { error: `node ${requested} does not exist` };
    const why = unusableReason(node);
    return why ? { error: why } : { node: requested };
  }
  const names = nodes
    .filter((n) => n.metadata?.name !== source && schedulable(n))
    .map((n) => n.metadata?.name ?? '')
    .sort();
  const first = names[0];
  return first ? { node: first } : { error: `no Ready, schedulable node other than ${source}` };
}

/** The controlling owner reference of what a Migration creates. */
export function ownedBy(mig: Migration): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: MIGRATION.kind,
    name: mig.metadata.name ?? '',
    uid: mig.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The pod's controlling owner (ReplicaSet, StatefulSet, Job, ...), if any. */
export function controllingOwner(pod: V1Pod): V1OwnerReference | undefined {
  return pod.metadata?.ownerReferences?.find((o) => o.controller);
}

/** Milliseconds between two ISO timestamps, or undefined if either is missing. */
export function msBetween(from?: string, to?: string): number | undefined {
  if (!from || !to) return undefined;
  const a = Date.parse(from);
  const b = Date.parse(to);
  return Number.isNaN(a) || Number.isNaN(b) ? undefined : Math.max(0, b - a);
}
