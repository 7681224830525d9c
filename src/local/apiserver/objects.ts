/**
 * The verbs on stored objects, with the real server's semantics: uid and
 * creationTimestamp, resourceVersion preconditions (409), generation bumped only by spec
 * changes, /status written apart from the rest, no-op writes not stored, finalizers and
 * deletionTimestamp, graceful pod deletion, owner-reference garbage collection and
 * namespace cleanup.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  ApiError,
  alreadyExists,
  badRequest,
  conflict,
  invalid,
  notFound,
  type ErrorTarget,
} from './errors.js';
import { prepareBuiltin } from './hooks.js';
import type { Registry } from './registry.js';
import type { Store } from './storage.js';
import {
  apiVersionOf,
  truncateTimes,
  clone,
  isObj,
  jsonEqual,
  metaOf,
  type Obj,
  type ResourceInfo,
} from './types.js';
import { validateCustomResource } from './validation.js';

/** Options of a write, from the query string. */
export interface WriteOptions {
  dryRun?: boolean;
  /** fieldValidation: Strict rejects unknown fields; Warn/Ignore prune them. */
  fieldValidation?: string;
  /** Collects `Warning` headers for the response. */
  warnings?: string[];
}

/** Options of a delete, from the body (DeleteOptions) or the query string. */
export interface DeleteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: string;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

/** RFC 3339 timestamp to the second, as Kubernetes writes them. */
export function nowRfc3339(offsetSeconds = 0): string {
  return new Date(Date.now() + offsetSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function targetOf(info: ResourceInfo, name: string | undefined): ErrorTarget {
  return { group: info.group, kind: info.kind, ...(name !== undefined ? { name } : {}) };
}

/** Everything but metadata (and status, when status is its own subresource): what bumps generation. */
function specPart(info: ResourceInfo, o: Obj): Obj {
  const rest = { ...o };
  delete rest['metadata'];
  delete rest['apiVersion'];
  delete rest['kind'];
  if (info.statusSubresource || !info.crd) delete rest['status'];
  return rest;
}

/** The object layer of the API double: every verb, over one store and one registry. */
export class Objects {
  constructor(
    readonly store: Store,
    readonly registry: Registry,
  ) {}

  /** The object as served in `info`'s version. */
  present(info: ResourceInfo, o: Obj): Obj {
    o['apiVersion'] = apiVersionOf(info);
    o['kind'] = info.kind;
    return o;
  }

  private checkNamespace(info: ResourceInfo, ns: string | undefined): void {
    if (!info.namespaced) return;
    if (!ns) throw badRequest('the server could not find the requested resource: a namespace is required');
    const nsObj = this.store.get('namespaces', undefined, ns);
    if (!nsObj) throw notFound({ group: '', kind: 'Namespace', name: ns }, 'namespaces');
    if (metaOf(nsObj).deletionTimestamp) {
      throw new ApiError(
        403,
        'Forbidden',
        `${info.resource} is forbidden: unable to create new content in namespace ${ns} because it is being terminated`,
        { group: info.group, kind: info.kind },
      );
    }
  }

  /** GET one object. */
  get(info: ResourceInfo, ns: string | undefined, name: string): Obj {
    const o = this.store.get(info.storageKey, info.namespaced ? ns : undefined, name);
    if (!o) throw notFound(targetOf(info, name), info.resource);
    return this.present(info, o);
  }

  /** All objects of a resource (optionally in one namespace). */
  list(info: ResourceInfo, ns: string | undefined): Obj[] {
    return this.store
      .list(info.storageKey, info.namespaced ? ns : undefined)
      .map((o) => this.present(info, o));
  }

  private validate(info: ResourceInfo, o: Obj, creating: boolean, opts: WriteOptions, old?: Obj): void {
    const name = metaOf(o).name;
    if (!name || !DNS_SUBDOMAIN.test(name) || name.length > 253) {
      throw invalid(targetOf(info, name ?? ''), [
        name
          ? {
              reason: 'FieldValueInvalid',
              message: `Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
              field: 'metadata.name',
            }
          : {
              reason: 'FieldValueRequired',
              message: 'name or generateName is required',
              field: 'metadata.name',
            },
      ]);
    }
    if (info.crd) {
      const r = validateCustomResource(o, info.schema);
      if (r.unknownFields.length) {
        if (opts.fieldValidation === 'Strict') {
          const list = r.unknownFields.map((f) => `unknown field "${f}"`);
          throw badRequest(
            `${info.kind} in version "${info.version}" cannot be handled as a ${info.kind}: strict decoding error: ${list.join(', ')}`,
          );
        }
        if (opts.fieldValidation !== 'Ignore')
          opts.warnings?.push(...r.unknownFields.map((f) => `unknown field "${f}"`));
      }
      if (r.causes.length) throw invalid(targetOf(info, name), r.causes);
    } else {
      prepareBuiltin(info, o, creating, this.registry, old);
    }
  }

  /** POST: create. */
  create(info: ResourceInfo, ns: string | undefined, body: unknown, opts: WriteOptions = {}): Obj {
    if (!isObj(body)) throw badRequest('the body of the request was in an unknown format');
    const o = clone(body);
    const m = metaOf(o);
    if (info.namespaced) {
      if (m.namespace && ns && m.namespace !== ns) {
        throw badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      m.namespace = ns ?? m.namespace;
    } else delete m.namespace;
    this.checkNamespace(info, m.namespace);
    if (!m.name && m.generateName) m.name = `${m.generateName}${randomBytes(4).toString('hex').slice(0, 5)}`;
    if (m.name && this.store.get(info.storageKey, m.namespace, m.name))
      throw alreadyExists(targetOf(info, m.name), info.resource);
    this.present(info, o);
    if (info.statusSubresource && info.crd) delete o['status'];
    this.validate(info, o, true, opts);
    if (!info.crd) truncateTimes(o);
    m.uid = randomUUID();
    m.creationTimestamp = nowRfc3339();
    m.generation = 1;
    delete m.resourceVersion;
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    if (opts.dryRun) return o;
    return this.present(info, this.store.create(info.storageKey, o));
  }

  /**
   * PUT: replace. `subresource` 'status' writes only status; the main resource keeps the
   * stored status when status is a subresource. An empty resourceVersion is unconditional.
   */
  update(
    info: ResourceInfo,
    ns: string | undefined,
    name: string,
    body: unknown,
    subresource: string | undefined,
    opts: WriteOptions = {},
  ): Obj {
    if (!isObj(body)) throw badRequest('the body of the request was in an unknown format');
    const cur = this.store.get(info.storageKey, info.namespaced ? ns : undefined, name);
    if (!cur) throw notFound(targetOf(info, name), info.resource);
    const bm = metaOf(body);
    if (bm.name !== undefined && bm.name !== name) {
      throw badRequest(`the name of the object (${bm.name}) does not match the name on the URL (${name})`);
    }
    const cm = metaOf(cur);
    if (bm.resourceVersion && bm.resourceVersion !== cm.resourceVersion)
      throw conflict(targetOf(info, name), info.resource);
    let next: Obj;
    if (subresource === 'status') {
      next = clone(cur);
      delete next['status'];
      if (body['status'] !== undefined) next['status'] = clone(body['status']);
    } else {
      next = clone(body);
      delete next['status'];
      if (info.statusSubresource) {
        if (cur['status'] !== undefined) next['status'] = clone(cur['status']);
      } else if (body['status'] !== undefined) next['status'] = clone(body['status']);
    }
    const nm = metaOf(next);
    for (const k of [
      'uid',
      'creationTimestamp',
      'deletionTimestamp',
      'deletionGracePeriodSeconds',
      'generation',
    ] as const) {
      if (cm[k] === undefined) delete nm[k];
      else (nm as Record<string, unknown>)[k] = cm[k];
    }
    nm.name = name;
    if (info.namespaced) nm.namespace = cm.namespace;
    else delete nm.namespace;
    nm.resourceVersion = cm.resourceVersion;
    this.present(info, next);
    this.present(info, cur);
    if (subresource !== 'status') this.validate(info, next, false, opts, cur);
    else if (info.crd) {
      const r = validateCustomResource(next, info.schema);
      if (r.causes.length) throw invalid(targetOf(info, name), r.causes);
    }
    if (!info.crd) truncateTimes(next);
    if (!jsonEqual(specPart(info, cur), specPart(info, next))) nm.generation = (cm.generation ?? 0) + 1;
    if (jsonEqual(next, cur)) return cur;
    if (opts.dryRun) return next;
    if (cm.deletionTimestamp && !nm.finalizers?.length) {
      const shouldRemove = !this.waitsForGrace(info, next);
      if (shouldRemove) {
        const stored = this.store.update(info.storageKey, next, cur);
        this.remove(info, stored);
        return this.present(info, stored);
      }
    }
    return this.present(info, this.store.update(info.storageKey, next, cur));
  }

  /** A pod being deleted gracefully stays until its kubelet confirms with a zero-grace delete. */
  private waitsForGrace(info: ResourceInfo, o: Obj): boolean {
    return info.storageKey === 'pods' && (metaOf(o).deletionGracePeriodSeconds ?? 0) > 0;
  }

  /** DELETE one object; returns the object as it now is (still there if finalizers hold it). */
  delete(info: ResourceInfo, ns: string | undefined, name: string, opts: DeleteOptions = {}): Obj {
    const cur = this.store.get(info.storageKey, info.namespaced ? ns : undefined, name);
    if (!cur) throw notFound(targetOf(info, name), info.resource);
    const cm = metaOf(cur);
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== cm.uid) {
      throw new ApiError(
        409,
        'Conflict',
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cm.uid}`,
        targetOf(info, name),
      );
    }
    if (pre?.resourceVersion && pre.resourceVersion !== cm.resourceVersion)
      throw conflict(targetOf(info, name), info.resource);
    if (opts.dryRun) return this.present(info, cur);
    const grace = this.graceFor(info, cur, opts);
    if (cm.finalizers?.length || grace > 0 || info.storageKey === 'namespaces') {
      const next = clone(cur);
      const nm = metaOf(next);
      if (!nm.deletionTimestamp || (grace === 0 && (nm.deletionGracePeriodSeconds ?? 0) > 0)) {
        nm.deletionTimestamp = nowRfc3339(grace);
        nm.deletionGracePeriodSeconds = grace;
      }
      if (info.storageKey === 'namespaces') next['status'] = { phase: 'Terminating' };
      if (opts.propagationPolicy === 'Orphan' && !nm.finalizers?.includes('orphan')) {
        // Recorded like the real server, but dependents are never collected in this double when orphaning.
      }
      const stored = jsonEqual(next, cur) ? cur : this.store.update(info.storageKey, next, cur);
      if (info.storageKey === 'namespaces') this.emptyNamespace(name);
      else if (!nm.finalizers?.length && grace === 0) this.remove(info, stored);
      return this.present(info, stored);
    }
    return this.present(info, this.remove(info, cur, opts.propagationPolicy));
  }

  private graceFor(info: ResourceInfo, o: Obj, opts: DeleteOptions): number {
    if (info.storageKey !== 'pods') return 0;
    const spec = isObj(o['spec']) ? o['spec'] : {};
    const phase = isObj(o['status']) ? o['status']['phase'] : undefined;
    // Unbound or finished pods have no kubelet to wait for: they go at once.
    if (!spec['nodeName'] || phase === 'Succeeded' || phase === 'Failed') return 0;
    if (opts.gracePeriodSeconds !== undefined) return Math.max(0, opts.gracePeriodSeconds);
    const current = metaOf(o).deletionGracePeriodSeconds;
    if (current !== undefined) return current;
    const t = spec['terminationGracePeriodSeconds'];
    return typeof t === 'number' ? t : 30;
  }

  /** Removes a stored object for good, then collects what it owned and finishes namespaces. */
  private remove(info: ResourceInfo, o: Obj, propagation?: string): Obj {
    const m = metaOf(o);
    const gone = this.store.remove(info.storageKey, m.namespace, m.name!) ?? o;
    if (info.crd === undefined && info.storageKey === 'customresourcedefinitions.apiextensions.k8s.io') {
      const spec = isObj(o['spec']) ? o['spec'] : {};
      const names = isObj(spec['names']) ? spec['names'] : {};
      this.store.dropAll(`${String(names['plural'])}.${String(spec['group'])}`);
      this.registry.removeCrd(m.name!);
    }
    if (propagation === 'Orphan' && m.uid) this.orphanDependents(m.uid);
    else if (m.uid) this.collectDependents(m.uid);
    if (m.namespace) this.finishNamespace(m.namespace);
    return gone;
  }

  /** Background garbage collection: delete every object whose ownerReferences name `uid`. */
  private collectDependents(uid: string): void {
    for (const info of this.registry.all()) {
      if (info.version !== this.storageVersionOf(info)) continue;
      for (const o of this.store.list(info.storageKey)) {
        const refs = metaOf(o).ownerReferences ?? [];
        if (!refs.some((r) => r.uid === uid)) continue;
        const m = metaOf(o);
        if (m.deletionTimestamp) continue;
        try {
          this.delete(info, m.namespace, m.name!, {});
        } catch {
          // Already gone: nothing to collect.
        }
      }
    }
  }

  /**
   * Orphan propagation: the dependents stay, without their references to `uid` (as the
   * real garbage collector leaves them), so that nothing later collects them as dangling.
   */
  private orphanDependents(uid: string): void {
    for (const info of this.registry.all()) {
      if (info.version !== this.storageVersionOf(info)) continue;
      for (const o of this.store.list(info.storageKey)) {
        const refs = metaOf(o).ownerReferences ?? [];
        if (!refs.some((r) => r.uid === uid)) continue;
        const next = clone(o);
        const left = refs.filter((r) => r.uid !== uid);
        if (left.length) metaOf(next).ownerReferences = left;
        else delete metaOf(next).ownerReferences;
        this.store.update(info.storageKey, next, o);
      }
    }
  }

  /** One served version per storage key, so that collection visits each store once. */
  private storageVersionOf(info: ResourceInfo): string {
    return this.registry.all().find((r) => r.storageKey === info.storageKey && r.group === info.group)!
      .version;
  }

  private emptyNamespace(ns: string): void {
    for (const info of this.registry.all()) {
      if (!info.namespaced || info.version !== this.storageVersionOf(info)) continue;
      for (const o of this.store.list(info.storageKey, ns)) {
        const m = metaOf(o);
        if (m.deletionTimestamp) continue;
        try {
          this.delete(info, ns, m.name!, { gracePeriodSeconds: 0 });
        } catch {
          // Raced with another delete.
        }
      }
    }
    this.finishNamespace(ns);
  }

  /** A terminating namespace goes once nothing is left in it. */
  private finishNamespace(ns: string): void {
    const nsObj = this.store.get('namespaces', undefined, ns);
    if (!nsObj || !metaOf(nsObj).deletionTimestamp) return;
    const left = this.registry
      .all()
      .some((i) => i.namespaced && this.store.list(i.storageKey, ns).length > 0);
    if (!left) this.store.remove('namespaces', undefined, ns);
  }
}
