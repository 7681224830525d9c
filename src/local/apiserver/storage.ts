/**
 * The object store: one global, monotonically increasing resourceVersion (like etcd's
 * revision), a bounded history of change events for watches to resume from, and
 * compaction that makes older versions answer 410 Gone.
 */
import { clone, metaOf, type Obj } from './types.js';

/** One change, as recorded in history and fanned out to watches. */
export interface StoredEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** The object after the change (for DELETED: the last state, at the deletion's version). */
  object: Obj;
  /** The object before the change, so that selector watches can turn moves into ADDED/DELETED. */
  prev?: Obj;
  rv: number;
  storageKey: string;
}

type Listener = (e: StoredEvent) => void;

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

/** In-memory storage shared by every resource of one API server. */
export class Store {
  private rv = 1;
  private readonly data = new Map<string, Map<string, Obj>>();
  private history: StoredEvent[] = [];
  /** Every event with rv greater than this is still in history. */
  private compactedRv = 1;
  private readonly listeners = new Set<Listener>();

  constructor(private readonly historyLimit = 5000) {}

  /** The latest resourceVersion handed out. */
  currentRv(): number {
    return this.rv;
  }

  /** The oldest resourceVersion a watch may still start from. */
  oldestWatchableRv(): number {
    return this.compactedRv;
  }

  private bucket(storageKey: string): Map<string, Obj> {
    let b = this.data.get(storageKey);
    if (!b) {
      b = new Map();
      this.data.set(storageKey, b);
    }
    return b;
  }

  /** A copy of one object, or undefined. */
  get(storageKey: string, namespace: string | undefined, name: string): Obj | undefined {
    const o = this.data.get(storageKey)?.get(keyOf(namespace, name));
    return o ? clone(o) : undefined;
  }

  /** Copies of all objects of a resource, optionally in one namespace, sorted by namespace/name. */
  list(storageKey: string, namespace?: string): Obj[] {
    const b = this.data.get(storageKey);
    if (!b) return [];
    const keys = [...b.keys()].sort();
    const out: Obj[] = [];
    for (const k of keys) {
      const o = b.get(k)!;
      if (namespace !== undefined && metaOf(o).namespace !== namespace) continue;
      out.push(clone(o));
    }
    return out;
  }

  /** Stores a new object, stamping the next resourceVersion; returns the stored copy. */
  create(storageKey: string, obj: Obj): Obj {
    const m = metaOf(obj);
    return this.write(storageKey, 'ADDED', obj, undefined, keyOf(m.namespace, m.name!));
  }

  /** Replaces an existing object; the caller has already checked preconditions. */
  update(storageKey: string, obj: Obj, prev: Obj): Obj {
    const m = metaOf(obj);
    return this.write(storageKey, 'MODIFIED', obj, prev, keyOf(m.namespace, m.name!));
  }

  /** Removes an object; the DELETED event carries it at the deletion's resourceVersion. */
  remove(storageKey: string, namespace: string | undefined, name: string): Obj | undefined {
    const b = this.data.get(storageKey);
    const k = keyOf(namespace, name);
    const prev = b?.get(k);
    if (!b || !prev) return undefined;
    b.delete(k);
    const last = clone(prev);
    this.rv++;
    metaOf(last).resourceVersion = String(this.rv);
    this.record({ type: 'DELETED', object: last, prev, rv: this.rv, storageKey });
    return clone(last);
  }

  /** Drops every object of a resource (a CRD went away), emitting DELETED for each. */
  dropAll(storageKey: string): void {
    for (const o of this.list(storageKey)) {
      const m = metaOf(o);
      this.remove(storageKey, m.namespace, m.name!);
    }
    this.data.delete(storageKey);
  }

  private write(
    storageKey: string,
    type: 'ADDED' | 'MODIFIED',
    obj: Obj,
    prev: Obj | undefined,
    k: string,
  ): Obj {
    this.rv++;
    const stored = clone(obj);
    metaOf(stored).resourceVersion = String(this.rv);
    this.bucket(storageKey).set(k, stored);
    this.record({ type, object: clone(stored), prev, rv: this.rv, storageKey });
    return clone(stored);
  }

  private record(e: StoredEvent): void {
    this.history.push(e);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compactedRv = dropped[dropped.length - 1]!.rv;
    }
    for (const l of [...this.listeners]) l(e);
  }

  /**
   * Forgets history up to `upTo` (default: everything so far), like etcd compaction:
   * watches from an older resourceVersion then get 410 Gone.
   */
  compact(upTo: number = this.rv): void {
    this.history = this.history.filter((e) => e.rv > upTo);
    this.compactedRv = Math.max(this.compactedRv, upTo);
  }

  /** Events of one resource after `rv`, or 'gone' when history no longer reaches back that far. */
  eventsSince(storageKey: string, rv: number): StoredEvent[] | 'gone' {
    if (rv < this.compactedRv) return 'gone';
    return this.history.filter((e) => e.rv > rv && e.storageKey === storageKey);
  }

  /** Calls `fn` for every future change; returns the unsubscribe function. */
  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
