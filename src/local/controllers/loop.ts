/**
 * The work loop the local controllers share: keys in, one sync at a time per key,
 * changes that arrive during a sync coalesced into one more sync, a failed sync
 * retried a second later. Syncs read the current state from the API server, so
 * watch events only say "look again" (level-based, no caches to trust).
 */
import {
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesObject,
  type ListPromise,
} from '@kubernetes/client-node';

/** A keyed, coalescing sync loop. */
export class SyncLoop {
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private readonly retries = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly name: string,
    private readonly sync: (key: string) => Promise<void>,
    private readonly log?: (line: string) => void,
  ) {}

  /** Asks for a sync of `key` (namespace/name). */
  add(key: string): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.again.add(key);
      return;
    }
    const run = this.sync(key)
      .catch((e: unknown) => {
        this.log?.(`${this.name} ${key}: ${e instanceof Error ? e.message : String(e)}`);
        if (this.stopped) return;
        const t = setTimeout(() => {
          this.retries.delete(t);
          this.add(key);
        }, 1000);
        this.retries.add(t);
      })
      .finally(() => {
        this.running.delete(key);
        if (this.again.delete(key)) this.add(key);
      });
    this.running.set(key, run);
  }

  /** Stops taking keys and waits for the syncs under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
    await Promise.all([...this.running.values()]);
  }
}

/** namespace/name of an object. */
export function keyOf(o: { metadata?: { namespace?: string; name?: string } }): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

/** Splits a namespace/name key. */
export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** The controlling owner reference of an object, if any. */
export function controllerOf(o: {
  metadata?: { ownerReferences?: { controller?: boolean; kind: string; name: string; uid: string }[] };
}): { kind: string; name: string; uid: string } | undefined {
  return o.metadata?.ownerReferences?.find((r) => r.controller === true);
}

/** The HTTP status of a client-node error (ApiException.code), if any. */
export function statusOf(e: unknown): number | undefined {
  const c = (e as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}

/** A started list-watch: its cache and its stop. */
export interface Watched<T> {
  list(): ReadonlyArray<T>;
  stop(): Promise<void>;
}

/**
 * Lists and watches `path` with client-node's ListWatch, calling `changed` for every
 * add, update and delete; a broken watch is restarted a second later, as the
 * process kubelet does.
 */
export async function listWatch<T extends KubernetesObject>(
  kc: KubeConfig,
  path: string,
  list: ListPromise<T>,
  changed: (obj: T) => void,
  log?: (line: string) => void,
): Promise<Watched<T>> {
  const lw = new ListWatch<T>(path, new Watch(kc), list, false);
  let stopped = false;
  lw.on('add', changed);
  lw.on('update', changed);
  lw.on('delete', changed);
  lw.on('error', (e) => {
    if (stopped) return;
    log?.(`watch ${path}: ${String(e)}; restarting`);
    setTimeout(() => void lw.start().catch(() => undefined), 1000).unref();
  });
  await lw.start();
  return {
    list: () => lw.list(),
    stop: async () => {
      stopped = true;
      await lw.stop();
    },
  };
}

/** What an owner controller watches: its own kind, and the kind it controls (by ownerReference). */
export interface OwnerWatches<P extends KubernetesObject, C extends KubernetesObject> {
  name: string;
  owner: { path: string; list: ListPromise<P> };
  owned: { path: string; list: ListPromise<C>; ownerKind: string };
  /** How often every owner is synced again, whatever the watches said (level-based). */
  resyncMs?: number;
}

/**
 * Runs `sync` for an owner whenever it changes, whenever an object it controls
 * changes, and every `resyncMs`: the wiring a ReplicaSet (owner of pods) and a
 * Deployment (owner of ReplicaSets) controller share.
 */
export async function runOwnerController<P extends KubernetesObject, C extends KubernetesObject>(
  kc: KubeConfig,
  w: OwnerWatches<P, C>,
  sync: (key: string) => Promise<void>,
  log?: (line: string) => void,
): Promise<{ stop(): Promise<void> }> {
  const loop = new SyncLoop(w.name, sync, log);
  const owners = await listWatch<P>(kc, w.owner.path, w.owner.list, (o) => loop.add(keyOf(o)), log);
  const owned = await listWatch<C>(
    kc,
    w.owned.path,
    w.owned.list,
    (o) => {
      const ref = controllerOf(o);
      if (ref?.kind === w.owned.ownerKind) loop.add(`${o.metadata?.namespace ?? ''}/${ref.name}`);
    },
    log,
  );
  const resync = setInterval(() => {
    for (const o of owners.list()) loop.add(keyOf(o));
  }, w.resyncMs ?? 10_000);
  return {
    async stop() {
      clearInterval(resync);
      await owners.stop();
      await owned.stop();
      await loop.stop();
    },
  };
}
