/**
 * One reconcile's status, for every reconciler (the controller's three and the
 * agent's): a copy of the status that was read, a condition setter stamped with
 * the generation, and a write of the status subresource only when the copy
 * differs from what was read, with the condition transitions it made for the
 * caller to announce.
 *
 * The write carries the resourceVersion that was read, so a concurrent writer
 * makes it fail with 409: the controller lets that error requeue the key (the
 * next reconcile reads again); the agent, which has done its work and only
 * reports it, redoes its change on a fresh read (updateStatus).
 */
import type { Condition, ConditionInput, ObjectMeta } from '../api/index.js';
import { removeCondition, setCondition } from '../api/index.js';
import type { ResourceClient } from './client.js';
import { isConflict } from './errors.js';

/** A resource whose status carries metav1 conditions (every fdckpt kind). */
export interface Conditioned {
  metadata: ObjectMeta;
  status?: { conditions?: Condition[] };
}

/** A condition that appeared, or whose status or reason changed. */
export interface Transition {
  type: string;
  before?: Condition;
  after: Condition;
}

/** What a writer states about a condition; the draft adds the generation and the time. */
export type ConditionChange = Omit<ConditionInput, 'observedGeneration'>;

export interface DraftOptions {
  now?: () => Date;
  /**
   * The generation conditions are stamped with. Default: the generation of the
   * object the draft starts from. The agent, which writes on a fresh read after
   * its work, passes the generation it worked on.
   */
  generation?: number;
}

/**
 * The status being built during one reconcile. `status` is a deep copy of the
 * stored one (objects from a cache are never modified) that the reconciler
 * changes freely; `changed()` and `transitions()` compare it with what was read.
 */
export class StatusDraft<T extends Conditioned> {
  readonly status: NonNullable<T['status']>;
  private base: T;
  private readonly now: () => Date;
  private readonly generation: number | undefined;

  constructor(read: T, options: DraftOptions = {}) {
    this.base = read;
    this.status = structuredClone(read.status ?? {});
    this.now = options.now ?? ((): Date => new Date());
    this.generation = 'generation' in options ? options.generation : read.metadata.generation;
  }

  /** The object the status was read from (and is written onto). */
  get read(): T {
    return this.base;
  }

  /**
   * The same object after the reconciler's own metadata patch (a finalizer, a
   * label): the write must carry the patch's resourceVersion. The patch is
   * conditional on the resourceVersion read, so the status it returns is the one read.
   */
  rebase(patched: T): void {
    this.base = patched;
  }

  /** Set one condition: observedGeneration stamped, lastTransitionTime kept unless the status changes. */
  setCondition(change: ConditionChange): void {
    this.status.conditions = setCondition(
      this.status.conditions,
      { ...change, observedGeneration: this.generation },
      this.now(),
    );
  }

  removeCondition(type: string): void {
    // Leave an absent list absent: `conditions: []` would differ from what was read.
    if (this.status.conditions) this.status.conditions = removeCondition(this.status.conditions, type);
  }

  /** Whether the status differs from the one read (a deep comparison, as the API server stores it). */
  changed(): boolean {
    return !sameJson(this.base.status ?? {}, this.status);
  }

  /**
   * The conditions of `types` (all, if not given) that appeared or changed
   * status or reason between the status read and this one, in `types` order.
   * A new message alone is no transition.
   */
  transitions(types?: readonly string[]): Transition[] {
    const before = this.base.status?.conditions ?? [];
    const after = this.status.conditions ?? [];
    const order = types ?? after.map((c) => c.type);
    const out: Transition[] = [];
    for (const type of order) {
      const now = after.find((c) => c.type === type);
      const old = before.find((c) => c.type === type);
      if (!now || (old && old.status === now.status && old.reason === now.reason)) continue;
      out.push({ type, before: old, after: now });
    }
    return out;
  }
}

/**
 * Write the draft's status if it changed, with the resourceVersion read.
 * Returns the object as written, or undefined when there was nothing to write.
 * A conflict (409) is thrown: someone wrote in between, so what was built is stale.
 */
export async function saveStatus<T extends Conditioned>(
  client: ResourceClient<T>,
  draft: StatusDraft<T>,
): Promise<T | undefined> {
  if (!draft.changed()) return undefined;
  return client.replaceStatus({ ...structuredClone(draft.read), status: draft.status });
}

const ATTEMPTS = 8;

/**
 * The agent's status write: read, apply `change` to a draft, write only if it
 * changed; on 409 (the controller wrote in between) read again and redo the
 * change. Returns the object as written, or as read when nothing changed.
 */
export async function updateStatus<T extends Conditioned>(
  client: ResourceClient<T>,
  namespace: string,
  name: string,
  change: (draft: StatusDraft<T>, obj: T) => void,
  options: DraftOptions = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const obj = await client.get(namespace, name);
    const draft = new StatusDraft(obj, options);
    change(draft, obj);
    try {
      return (await saveStatus(client, draft)) ?? obj;
    } catch (err) {
      if (!isConflict(err) || attempt >= ATTEMPTS) throw err;
    }
  }
}

/**
 * Deep equality of two JSON values as the API server would store them: key
 * order does not matter (the server returns keys sorted, a reconciler builds
 * them in its own order) and an undefined property is an absent one.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => sameJson(x, b[i]));
  }
  if (!plain(a) || !plain(b)) return JSON.stringify(a) === JSON.stringify(b); // a Date, say
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = Object.keys(ra).filter((k) => ra[k] !== undefined);
  const kb = Object.keys(rb).filter((k) => rb[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => rb[k] !== undefined && sameJson(ra[k], rb[k]));
}

/** A plain object (not a Date, a Map, …), from any realm: structuredClone's may be another one's. */
function plain(x: object): boolean {
  return Object.prototype.toString.call(x) === '[object Object]';
}
