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

export class ResourceClient<T extends Resource> {
  constructor(
    readonly api: CustomObjectsApi,
    readonly kind: KindInfo,
  ) {}

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
    return (await this.api.replaceNamespacedCustomObjectStatus({
      ...this.base(ns),
      name: obj.metadata.name ?? '',
      body: obj,
    })) as T;
  }

  /**
   * A merge patch of metadata only (finalizers, labels), conditional on the
   * resourceVersion: it cannot undo someone else's concurrent change.
   */
  async patchMetadata(obj: T, metadata: Partial<ObjectMeta>): Promise<T> {
    const ns = obj.metadata.namespace ?? '';
    return (await this.api.patchNamespacedCustomObject(
      {
        ...this.base(ns),
        name: obj.metadata.name ?? '',
        body: { metadata: { ...metadata, resourceVersion: obj.metadata.resourceVersion } },
      },
      mergePatch,
    )) as T;
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
