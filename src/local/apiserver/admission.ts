/**
 * Admission webhooks: the stored Mutating- and ValidatingWebhookConfigurations are called
 * as a real server calls them — rules (operations, groups, versions, resources, scope),
 * namespace and object selectors, an admission.k8s.io/v1 AdmissionReview POSTed to
 * `clientConfig.url` (https with the caBundle; plain http is accepted on loopback here),
 * JSONPatch responses applied in order, denials and failures turned into Status errors
 * according to failurePolicy. `clientConfig.service` cannot be reached (services are not
 * routed in the harness) and counts as a call failure.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ApiError } from './errors.js';
import { jsonPatch } from './patch.js';
import type { Store } from './storage.js';
import { arr, isObj, metaOf, type Obj, type ResourceInfo } from './types.js';

const MUTATING = 'mutatingwebhookconfigurations.admissionregistration.k8s.io';
const VALIDATING = 'validatingwebhookconfigurations.admissionregistration.k8s.io';

/** One admission attempt. */
export interface AdmissionAttributes {
  info: ResourceInfo;
  operation: 'CREATE' | 'UPDATE' | 'DELETE';
  namespace: string | undefined;
  name: string;
  subresource: string | undefined;
  object?: Obj;
  oldObject?: Obj;
  dryRun: boolean;
}

interface Webhook {
  name: string;
  spec: Obj;
}

function matchesList(list: unknown, value: string): boolean {
  const l = arr(list).map(String);
  return l.includes('*') || l.includes(value);
}

/** metav1.LabelSelector (matchLabels, matchExpressions) against labels. */
function labelSelectorMatches(sel: unknown, labels: Record<string, string>): boolean {
  if (!isObj(sel)) return true;
  const ml = isObj(sel['matchLabels']) ? sel['matchLabels'] : {};
  for (const [k, v] of Object.entries(ml)) if (labels[k] !== v) return false;
  for (const e of arr(sel['matchExpressions']).filter(isObj)) {
    const key = String(e['key']);
    const values = arr(e['values']).map(String);
    const has = key in labels;
    switch (e['operator']) {
      case 'In':
        if (!has || !values.includes(labels[key]!)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

function ruleMatches(rule: Obj, a: AdmissionAttributes): boolean {
  const resource = a.subresource ? `${a.info.resource}/${a.subresource}` : a.info.resource;
  const resources = arr(rule['resources']).map(String);
  const resOk =
    resources.includes(resource) ||
    resources.includes('*/*') ||
    (!a.subresource && resources.includes('*')) ||
    (a.subresource !== undefined && resources.includes(`*/${a.subresource}`)) ||
    (a.subresource !== undefined && resources.includes(`${a.info.resource}/*`));
  const scope = typeof rule['scope'] === 'string' ? rule['scope'] : '*';
  const scopeOk = scope === '*' || (scope === 'Namespaced') === a.info.namespaced;
  return (
    matchesList(rule['operations'], a.operation) &&
    matchesList(rule['apiGroups'], a.info.group) &&
    matchesList(rule['apiVersions'], a.info.version) &&
    resOk &&
    scopeOk
  );
}

function webhooksFor(store: Store, key: string, a: AdmissionAttributes): Webhook[] {
  if (a.info.storageKey === MUTATING || a.info.storageKey === VALIDATING) return [];
  const out: Webhook[] = [];
  for (const cfg of store.list(key)) {
    for (const w of arr(cfg['webhooks']).filter(isObj)) {
      if (
        !arr(w['rules'])
          .filter(isObj)
          .some((r) => ruleMatches(r, a))
      )
        continue;
      const nsName = a.info.storageKey === 'namespaces' ? a.name : a.namespace;
      if (nsName) {
        const ns = store.get('namespaces', undefined, nsName);
        if (!labelSelectorMatches(w['namespaceSelector'], (ns && metaOf(ns).labels) ?? {})) continue;
      }
      const labels = metaOf(a.object ?? a.oldObject ?? {}).labels ?? {};
      if (!labelSelectorMatches(w['objectSelector'], labels)) continue;
      out.push({ name: String(w['name']), spec: w });
    }
  }
  return out;
}

/** True when some webhook would be called for this request. */
export function hasWebhooks(store: Store, a: AdmissionAttributes): boolean {
  return webhooksFor(store, MUTATING, a).length > 0 || webhooksFor(store, VALIDATING, a).length > 0;
}

function post(url: string, caBundle: string | undefined, body: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    if (u.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) {
      reject(new Error(`webhook URL ${url} must use https (plain http only on loopback in this harness)`));
      return;
    }
    const opts = {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json',
        'Content-Length': Buffer.byteLength(body),
      },
      timeout: timeoutMs,
      ...(caBundle ? { ca: Buffer.from(caBundle, 'base64').toString('utf8') } : {}),
    };
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 500) >= 400) {
          reject(new Error(`the server responded with status ${res.statusCode}`));
          return;
        }
        try {
          resolve(JSON.parse(text));
        } catch {
          reject(new Error('the response is not an AdmissionReview'));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function call(w: Webhook, a: AdmissionAttributes, object: Obj | undefined): Promise<Obj | undefined> {
  const cc = isObj(w.spec['clientConfig']) ? w.spec['clientConfig'] : {};
  const timeoutMs = (typeof w.spec['timeoutSeconds'] === 'number' ? w.spec['timeoutSeconds'] : 10) * 1000;
  const uid = randomUUID();
  const gvk = { group: a.info.group, version: a.info.version, kind: a.info.kind };
  const gvr = { group: a.info.group, version: a.info.version, resource: a.info.resource };
  const review = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: gvk,
      resource: gvr,
      ...(a.subresource ? { subResource: a.subresource } : {}),
      requestKind: gvk,
      requestResource: gvr,
      name: a.name,
      ...(a.namespace ? { namespace: a.namespace } : {}),
      operation: a.operation,
      userInfo: { username: 'system:admin', groups: ['system:masters', 'system:authenticated'] },
      object: object ?? null,
      oldObject: a.oldObject ?? null,
      dryRun: a.dryRun,
    },
  };
  let reply: unknown;
  try {
    if (typeof cc['url'] !== 'string')
      throw new Error('clientConfig.service is not routed in the local control plane; use clientConfig.url');
    reply = await post(
      cc['url'],
      typeof cc['caBundle'] === 'string' ? cc['caBundle'] : undefined,
      JSON.stringify(review),
      timeoutMs,
    );
  } catch (e) {
    if (w.spec['failurePolicy'] === 'Ignore') return undefined;
    throw new ApiError(
      500,
      'InternalError',
      `Internal error occurred: failed calling webhook "${w.name}": ${(e as Error).message}`,
    );
  }
  const response = isObj(reply) && isObj(reply['response']) ? reply['response'] : undefined;
  if (!response || response['uid'] !== uid) {
    if (w.spec['failurePolicy'] === 'Ignore') return undefined;
    throw new ApiError(
      500,
      'InternalError',
      `Internal error occurred: failed calling webhook "${w.name}": the response does not answer the request (uid)`,
    );
  }
  if (response['allowed'] !== true) {
    const st = isObj(response['status']) ? response['status'] : {};
    const code = typeof st['code'] === 'number' && st['code'] > 0 ? st['code'] : 400;
    const msg = typeof st['message'] === 'string' && st['message'] ? `: ${st['message']}` : '';
    throw new ApiError(
      code,
      typeof st['reason'] === 'string' ? st['reason'] : 'BadRequest',
      `admission webhook "${w.name}" denied the request${msg}`,
    );
  }
  if (typeof response['patch'] === 'string' && object) {
    if (response['patchType'] !== 'JSONPatch')
      throw new ApiError(500, 'InternalError', `webhook "${w.name}" returned a patch of unknown type`);
    const ops = JSON.parse(Buffer.from(response['patch'], 'base64').toString('utf8')) as unknown;
    const patched = jsonPatch(object, ops);
    if (!isObj(patched))
      throw new ApiError(500, 'InternalError', `webhook "${w.name}" patched the object into a non-object`);
    return patched;
  }
  return undefined;
}

/** Runs the mutating webhooks in order (by configuration name); returns the mutated object. */
export async function mutate(store: Store, a: AdmissionAttributes): Promise<Obj | undefined> {
  let object = a.object;
  for (const w of webhooksFor(store, MUTATING, a)) {
    const patched = await call(w, a, object);
    if (patched) object = patched;
  }
  return object;
}

/** Runs the validating webhooks; throws on the first denial. */
export async function validate(store: Store, a: AdmissionAttributes): Promise<void> {
  for (const w of webhooksFor(store, VALIDATING, a)) await call(w, a, a.object);
}
