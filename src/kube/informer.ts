/**
 * A list-then-watch cache of one resource, with the behaviour controllers
 * need from it: a watch that breaks is reopened from the last resourceVersion
 * seen, with backoff; a resourceVersion the server no longer has (410 Gone,
 * as an HTTP status or as an ERROR event) makes it list again and report the
 * differences as events. It never gives up and never exits the process.
 *
 * Cached objects are deep-frozen: a reconciler that modifies one by mistake
 * throws at once instead of corrupting the cache (sample-controller's rule).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { Watch } from '@kubernetes/client-node';
import type { Logger } from './log.js';
import { errorMessage, isGone } from './errors.js';

/** The metadata the informer relies on. */
export interface Keyed {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface ListResult<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

export interface InformerSource<T> {
  /** One list call (already restricted by the same selector as the watch). */
  list(): Promise<ListResult<T>>;
  /** API path of the collection, e.g. /apis/fdckpt.io/v1alpha1/checkpoints. */
  watchPath: string;
  /** Extra watch query parameters, e.g. labelSelector. */
  watchQuery?: Record<string, string>;
}

export interface EventHandler<T> {
  add?(obj: T): void;
  update?(old: T, obj: T): void;
  delete?(obj: T): void;
}

/** `namespace/name`, or `name` for a cluster-scoped object. */
export function objectKey(obj: Keyed): string {
  const m = obj.metadata ?? {};
  return m.namespace ? `${m.namespace}/${m.name ?? ''}` : (m.name ?? '');
}

/** Split a key back into namespace and name. */
export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return slash < 0
    ? { namespace: '', name: key }
    : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

type WatchEnd = 'closed' | 'gone';

export interface InformerOptions {
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export class Informer<T extends Keyed> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: EventHandler<T>[] = [];
  private resourceVersion: string | undefined;
  private stopped = false;
  private abort: AbortController | undefined;
  private synced = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  /** Times the informer had to list (the first one included); tests read it to check relists. */
  lists = 0;

  constructor(
    private readonly kc: KubeConfig,
    private readonly source: InformerSource<T>,
    private readonly log: Logger,
    private readonly options: InformerOptions = {},
  ) {}

  on(handler: EventHandler<T>): void {
    this.handlers.push(handler);
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** The cached object (frozen: clone before changing it). */
  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  /** Start listing and watching; resolves once the first list is in the cache. */
  start(): Promise<void> {
    return new Promise((resolve) => {
      this.loop = this.run(resolve);
    });
  }

  /** Stop watching; resolves when the watch loop has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
    await this.loop;
  }

  private async run(onSynced: () => void): Promise<void> {
    const min = this.options.minBackoffMs ?? 200;
    const max = this.options.maxBackoffMs ?? 30_000;
    let backoff = min;
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
          if (!this.synced) {
            this.synced = true;
            onSynced();
          }
        }
        const end = await this.watchOnce();
        backoff = min;
        if (end === 'gone') {
          this.log.info(`watch ${this.source.watchPath}: resourceVersion too old, listing again`);
          needList = true;
          continue;
        }
      } catch (err) {
        if (this.stopped) break;
        if (isGone(err)) needList = true;
        this.log.warn(`watch ${this.source.watchPath}: ${errorMessage(err)}; retrying in ${backoff} ms`);
      }
      // A clean close is normal (server timeouts); an error backs off. Both wait a little
      // so that a server that closes every watch at once cannot make this spin.
      await this.sleep(backoff);
      backoff = Math.min(backoff * 2, max);
    }
    // Stopped before the first list succeeded: release whoever awaits start().
    if (!this.synced) onSynced();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async relist(): Promise<void> {
    this.lists++;
    const result = await this.source.list();
    const seen = new Set<string>();
    for (const item of result.items) {
      const key = objectKey(item);
      seen.add(key);
      this.upsert(deepFreeze(item));
    }
    for (const [key, old] of [...this.cache]) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        for (const h of this.handlers) h.delete?.(old);
      }
    }
    this.resourceVersion = result.metadata?.resourceVersion;
  }

  private upsert(obj: T): void {
    const key = objectKey(obj);
    const old = this.cache.get(key);
    if (old?.metadata?.resourceVersion === obj.metadata?.resourceVersion && old) return;
    this.cache.set(key, obj);
    for (const h of this.handlers) {
      if (old) h.update?.(old, obj);
      else h.add?.(obj);
    }
  }

  private watchOnce(): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve, reject) => {
      let gone = false;
      const query: Record<string, string | boolean> = {
        allowWatchBookmarks: true,
        ...this.source.watchQuery,
      };
      if (this.resourceVersion) query['resourceVersion'] = this.resourceVersion;
      const onEvent = (type: string, obj: unknown): void => {
        if (type === 'ERROR') {
          const status = obj as { code?: number; message?: string };
          if (status.code === 410) gone = true;
          else
            this.log.warn(
              `watch ${this.source.watchPath}: error event: ${status.message ?? JSON.stringify(obj)}`,
            );
          this.abort?.abort();
          return;
        }
        const item = deepFreeze(obj as T);
        const rv = item.metadata?.resourceVersion;
        if (type === 'ADDED' || type === 'MODIFIED') this.upsert(item);
        else if (type === 'DELETED') {
          const key = objectKey(item);
          const old = this.cache.get(key);
          this.cache.delete(key);
          for (const h of this.handlers) h.delete?.(old ?? item);
        }
        if (rv) this.resourceVersion = rv;
      };
      const onDone = (err: unknown): void => {
        if (gone) resolve('gone');
        else if (err && !this.stopped && !(err instanceof Error && err.name === 'AbortError'))
          reject(err instanceof Error ? err : new Error(errorMessage(err)));
        else resolve('closed');
      };
      new Watch(this.kc)
        .watch(this.source.watchPath, query, onEvent, onDone)
        .then((controller) => {
          this.abort = controller;
          if (this.stopped) controller.abort();
        })
        .catch(reject);
    });
  }
}
