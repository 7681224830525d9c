/**
 * The few API calls the reconcilers make on custom resources, over
 * client-node's CustomObjectsApi: typed, one object per call, and every write
 * conditional on the resourceVersion that was read (409 on a stale write).
 */
import type { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import {
  CoreV1Api as CoreApi,
  CustomObjectsApi as CustomApi,
  KubeConfig as KubeConfigClass,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { KindInfo, ObjectMeta } from '../api/index.js';
import { GROUP, VERSION } from '../api/index.js';
import type { ListResult } from './informer.js';
import { isNotFound } from './errors.js';

/** Any fdckpt custom resource. */
export interface Resource {
  metadata: ObjectMeta;
  status?: object;
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** What read() needs of an informer: its cache (frozen objects) and whether it is filled. */
export interface ObjectCache<T> {
  readonly hasSynced: boolean;
  get(key: string): T | undefined;
}

/** Keys with a write of ours the cache has not shown yet; beyond this many the oldest are forgotten. */
const MAX_PENDING_WRITES = 10_000;
/** Versions a key may have been written from before the cache catches up (a burst of writes). */
const MAX_VERSIONS_PER_KEY = 16;

export class ResourceClient<T extends Resource> {
  private cache: ObjectCache<T> | undefined;
  /** Per key, the resourceVersions our own writes replaced: a cached copy at one of them is stale. */
  private readonly replaced = new Map<string, Set<string>>();

  constructor(
    readonly api: CustomObjectsApi,
    readonly kind: KindInfo,
  ) {}

  /**
   * Serve read() from an informer's cache (controller-runtime's cached client) instead of
   * one GET per reconcile. The informer must watch what this client reads, or a subset
   * of it (a label selector): what the cache does not hold is read live.
   */
  readThrough(cache: ObjectCache<T>): this {
    this.cache = cache;
    return this;
  }

  /**
   * A reconciler's first step: the object, or undefined when it does not exist. From the
   * cache when one is attached and synced (a clone: the cache's copies are frozen), live
   * otherwise — also when the cache does not hold the key (created a moment ago, or
   * outside the informer's selector) or still holds a version our own write replaced, so
   * that a reconcile sees its own last write. A copy older than someone else's write
   * is possible, as with any cache: every write here is conditional on the
   * resourceVersion read, so such a read ends in a 409 and a retry, never a lost update.
   */
  async read(namespace: string, name: string): Promise<T | undefined> {
    const key = namespace ? `${namespace}/${name}` : name;
    const cached = this.cache?.hasSynced ? this.cache.get(key) : undefined;
    if (cached !== undefined) {
      const stale = this.replaced.get(key)?.has(cached.metadata.resourceVersion ?? '') ?? false;
      if (!stale) {
        // The cache has moved past every version we replaced.
        this.replaced.delete(key);
        return structuredClone(cached);
      }
    }
    return this.find(namespace, name);
  }

  /** Note that a write of ours moved `before` on: the cache's copy at its version is stale. */
  private wrote(before: T): void {
    if (this.cache === undefined) return;
    const version = before.metadata.resourceVersion;
    if (version === undefined) return;
    const key = before.metadata.namespace
      ? `${before.metadata.namespace}/${before.metadata.name ?? ''}`
      : (before.metadata.name ?? '');
    let versions = this.replaced.get(key);
    if (versions === undefined) {
      if (this.replaced.size >= MAX_PENDING_WRITES) this.replaced.delete(this.replaced.keys().next().value!);
      versions = new Set();
      this.replaced.set(key, versions);
    }
    if (versions.size >= MAX_VERSIONS_PER_KEY) versions.delete(versions.values().next().value!);
    versions.add(version);
  }

  private base(namespace: string): { group: string; version: string; namespace: string; plural: string } {
    return { group: GROUP, version: VERSION, namespace, plural: this.kind.plural };
  }

  async get(namespace: string, name: string): Promise<T> {
    return (await this.api.getNamespacedCustomObject({ ...this.base(namespace), name })) as T;
  }

  /** Like get(), but undefined when the object does not exist (a reconciler's first step). */
  async find(namespace: string, name: string): Promise<T | undefined> {
    try {
      return await this.get(namespace, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** List across namespaces, optionally by label (what informers need). */
  async listAll(labelSelector?: string): Promise<ListResult<T>> {
    return (await this.api.listClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: this.kind.plural,
      labelSelector,
    })) as ListResult<T>;
  }

  /** List in one namespace by label. */
  async list(namespace: string, labelSelector: string): Promise<ListResult<T>> {
    return (await this.api.listNamespacedCustomObject({
      ...this.base(namespace),
      labelSelector,
    })) as ListResult<T>;
  }

  /** Collection path for watches. */
  get watchPath(): string {
    return `/apis/${GROUP}/${VERSION}/${this.kind.plural}`;
  }

  /** Write the status subresource of `obj` (which carries the resourceVersion it was read at). */
  async replaceStatus(obj: T): Promise<T> {
    const ns = obj.metadata.namespace ?? '';
    const written = (await this.api.replaceNamespacedCustomObjectStatus({
      ...this.base(ns),
      name: obj.metadata.name ?? '',
      body: obj,
    })) as T;
    this.wrote(obj);
    return written;
  }

  /**
   * A merge patch of metadata only (finalizers, labels), conditional on the
   * resourceVersion: it cannot undo someone else's concurrent change.
   */
  async patchMetadata(obj: T, metadata: Partial<ObjectMeta>): Promise<T> {
    const ns = obj.metadata.namespace ?? '';
    const written = (await this.api.patchNamespacedCustomObject(
      {
        ...this.base(ns),
        name: obj.metadata.name ?? '',
        body: { metadata: { ...metadata, resourceVersion: obj.metadata.resourceVersion } },
      },
      mergePatch,
    )) as T;
    this.wrote(obj);
    return written;
  }

  async delete(obj: T): Promise<void> {
    await this.api.deleteNamespacedCustomObject({
      ...this.base(obj.metadata.namespace ?? ''),
      name: obj.metadata.name ?? '',
      body: { preconditions: { uid: obj.metadata.uid } },
    });
  }
}

/** The API clients a component needs, from one kubeconfig. */
export interface Clients {
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
}

export function makeClients(kc: KubeConfig): Clients {
  return { kc, core: kc.makeApiClient(CoreApi), custom: kc.makeApiClient(CustomApi) };
}

/**
 * The kubeconfig from a file, or the default chain (KUBECONFIG, ~/.kube/config,
 * in-cluster service account). client-node refuses plain http unless
 * skipTLSVerify is set, so an http server (the local control plane) gets it.
 */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfigClass();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  kc.clusters = kc.clusters.map((c) => (c.server.startsWith('http://') ? { ...c, skipTLSVerify: true } : c));
  return kc;
}
