/**
 * The write paths that need more than one step: patches (computed on the current object
 * and retried on a conflict), server-side apply, admission around create/update/delete,
 * and pod binding.
 */
import type { IncomingMessage } from 'node:http';
import { load as yamlLoad } from 'js-yaml';
import { hasWebhooks, mutate, validate as validateAdmission, type AdmissionAttributes } from './admission.js';
import { ApiError, badRequest } from './errors.js';
import type { DeleteOptions, Objects, WriteOptions } from './objects.js';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.js';
import { isObj, metaOf, type Obj, type ResourceInfo } from './types.js';

/** Parses a JSON request body; an empty body is undefined. */
export function parseJson(text: string): unknown {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw badRequest(`the body of the request could not be decoded as JSON: ${(e as Error).message}`);
  }
}

/** Multi-step writes over the object layer. */
export class Writes {
  constructor(private readonly objects: Objects) {}

  /** PATCH: merge, JSON, strategic merge or apply patch; computed, admitted, written. */
  async patch(
    req: IncomingMessage,
    q: URLSearchParams,
    info: ResourceInfo,
    ns: string | undefined,
    name: string,
    sub: string | undefined,
    raw: string,
    opts: WriteOptions,
  ): Promise<{ obj: Obj; created: boolean }> {
    const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    if (ct === 'application/apply-patch+yaml') return this.apply(q, info, ns, name, sub, raw, opts);
    const patchBody = parseJson(raw);
    const pm = isObj(patchBody) && isObj(patchBody['metadata']) ? patchBody['metadata'] : {};
    // Like the real server, a patch that names no resourceVersion is retried on a conflict.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.patchOnce(ct, info, ns, name, sub, patchBody, opts);
      } catch (e) {
        if (
          !(e instanceof ApiError && e.reason === 'Conflict') ||
          pm['resourceVersion'] !== undefined ||
          attempt >= 5
        )
          throw e;
      }
    }
  }

  private async patchOnce(
    ct: string,
    info: ResourceInfo,
    ns: string | undefined,
    name: string,
    sub: string | undefined,
    patchBody: unknown,
    opts: WriteOptions,
  ): Promise<{ obj: Obj; created: boolean }> {
    const cur = this.objects.get(info, ns, name);
    let next: unknown;
    if (ct === 'application/merge-patch+json') next = mergePatch(cur, patchBody);
    else if (ct === 'application/json-patch+json') next = jsonPatch(cur, patchBody);
    else if (ct === 'application/strategic-merge-patch+json' && !info.crd)
      next = strategicMergePatch(cur, patchBody);
    else {
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml${info.crd ? '' : ', application/strategic-merge-patch+json'}`,
      );
    }
    if (!isObj(next)) throw badRequest('the patch did not produce an object');
    // A patch that does not name a resourceVersion applies to the version it was computed on.
    const pm = isObj(patchBody) && isObj(patchBody['metadata']) ? patchBody['metadata'] : {};
    if (pm['resourceVersion'] === undefined) metaOf(next).resourceVersion = metaOf(cur).resourceVersion;
    return { obj: await this.updateAdmitted(info, ns, name, next, sub, opts), created: false };
  }

  /**
   * Server-side apply, approximated: creates the object when missing, else merges the
   * applied configuration in (strategic merge for built-ins, merge patch for custom
   * resources). There are no managedFields, so no field ownership and no apply conflicts.
   */
  private async apply(
    q: URLSearchParams,
    info: ResourceInfo,
    ns: string | undefined,
    name: string,
    sub: string | undefined,
    raw: string,
    opts: WriteOptions,
  ): Promise<{ obj: Obj; created: boolean }> {
    if (!q.get('fieldManager'))
      throw badRequest(
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
      );
    let body: unknown;
    try {
      body = yamlLoad(raw);
    } catch (e) {
      throw badRequest(`error decoding YAML: ${(e as Error).message}`);
    }
    if (!isObj(body)) throw badRequest('the apply configuration must be an object');
    const bm = metaOf(body);
    if (bm.name !== undefined && bm.name !== name)
      throw badRequest(`the name of the object (${bm.name}) does not match the name on the URL (${name})`);
    bm.name = name;
    const cur = this.objects.store.get(info.storageKey, info.namespaced ? ns : undefined, name);
    if (!cur) {
      if (sub) throw new ApiError(404, 'NotFound', `${info.resource} "${name}" not found`);
      return { obj: await this.createAdmitted(info, ns, body, opts), created: true };
    }
    const next = info.crd
      ? mergePatch(this.objects.present(info, cur), body)
      : strategicMergePatch(this.objects.present(info, cur), body);
    if (!isObj(next)) throw badRequest('the apply configuration did not produce an object');
    if (bm.resourceVersion === undefined) metaOf(next).resourceVersion = metaOf(cur).resourceVersion;
    return { obj: await this.updateAdmitted(info, ns, name, next, sub, opts), created: false };
  }

  /**
   * Create through admission: the server's own defaulting (a dry run), the mutating
   * webhooks, validation again, the validating webhooks, then the write.
   */
  async createAdmitted(
    info: ResourceInfo,
    ns: string | undefined,
    body: unknown,
    opts: WriteOptions,
  ): Promise<Obj> {
    const attrs = (object: Obj): AdmissionAttributes => ({
      info,
      operation: 'CREATE',
      namespace: ns,
      name: metaOf(object).name ?? '',
      subresource: undefined,
      object,
      dryRun: opts.dryRun === true,
    });
    if (!isObj(body) || !hasWebhooks(this.objects.store, attrs(body)))
      return this.objects.create(info, ns, body, opts);
    const dry = { ...opts, dryRun: true, warnings: [] };
    const candidate = this.objects.create(info, ns, body, dry);
    const mutated = (await mutate(this.objects.store, attrs(candidate))) ?? candidate;
    await validateAdmission(this.objects.store, attrs(this.objects.create(info, ns, mutated, dry)));
    return this.objects.create(info, ns, mutated, opts);
  }

  /** Update (PUT, or the result of a patch) through admission, as {@link createAdmitted}. */
  async updateAdmitted(
    info: ResourceInfo,
    ns: string | undefined,
    name: string,
    body: unknown,
    sub: string | undefined,
    opts: WriteOptions,
  ): Promise<Obj> {
    const old = this.objects.store.get(info.storageKey, info.namespaced ? ns : undefined, name);
    const attrs = (object: Obj): AdmissionAttributes => ({
      info,
      operation: 'UPDATE',
      namespace: ns,
      name,
      subresource: sub,
      object,
      ...(old ? { oldObject: this.objects.present(info, old) } : {}),
      dryRun: opts.dryRun === true,
    });
    if (!old || !isObj(body) || !hasWebhooks(this.objects.store, attrs(body))) {
      return this.objects.update(info, ns, name, body, sub, opts);
    }
    const dry = { ...opts, dryRun: true, warnings: [] };
    const candidate = this.objects.update(info, ns, name, body, sub, dry);
    const mutated = (await mutate(this.objects.store, attrs(candidate))) ?? candidate;
    await validateAdmission(
      this.objects.store,
      attrs(this.objects.update(info, ns, name, mutated, sub, dry)),
    );
    return this.objects.update(info, ns, name, mutated, sub, opts);
  }

  /** Delete after the validating webhooks for DELETE have allowed it. */
  async deleteAdmitted(
    info: ResourceInfo,
    ns: string | undefined,
    name: string,
    opts: DeleteOptions,
  ): Promise<Obj> {
    const old = this.objects.store.get(info.storageKey, info.namespaced ? ns : undefined, name);
    if (old) {
      await validateAdmission(this.objects.store, {
        info,
        operation: 'DELETE',
        namespace: ns,
        name,
        subresource: undefined,
        oldObject: this.objects.present(info, old),
        dryRun: opts.dryRun === true,
      });
    }
    return this.objects.delete(info, ns, name, opts);
  }

  /** POST pods/NAME/binding: sets spec.nodeName once, as the scheduler does. */
  bind(info: ResourceInfo, ns: string | undefined, name: string, body: unknown): Obj {
    const target = isObj(body) && isObj(body['target']) ? body['target'] : undefined;
    if (!target || typeof target['name'] !== 'string') throw badRequest('binding needs target.name');
    const pod = this.objects.get(info, ns, name);
    const spec = isObj(pod['spec']) ? pod['spec'] : {};
    if (spec['nodeName'])
      throw new ApiError(
        409,
        'Conflict',
        `pod ${name} is already assigned to node ${JSON.stringify(spec['nodeName'])}`,
      );
    spec['nodeName'] = target['name'];
    pod['spec'] = spec;
    // Binding writes spec.nodeName, which an ordinary update may not; go around validation's view of it.
    const stored = this.objects.store.get(info.storageKey, ns, name)!;
    this.objects.store.update(info.storageKey, { ...stored, spec }, stored);
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 };
  }
}
