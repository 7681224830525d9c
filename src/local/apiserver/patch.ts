/**
 * The three patch types the real server accepts: JSON merge patch (RFC 7386), JSON patch
 * (RFC 6902) and a subset of strategic merge patch — what kubectl's client-side apply
 * sends for built-in kinds: lists merged by their merge key, `$patch`,
 * `$setElementOrder/`, `$deleteFromPrimitiveList/` and `$retainKeys` directives.
 */
import { badRequest, ApiError } from './errors.js';
import { clone, isObj, jsonEqual, type Obj } from './types.js';

/** RFC 7386: objects merge recursively, null deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  const out: Obj = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function unescapePointer(tok: string): string {
  return tok.replace(/~1/g, '/').replace(/~0/g, '~');
}

function parsePointer(p: unknown): string[] {
  if (typeof p !== 'string' || (p !== '' && !p.startsWith('/')))
    throw badRequest(`invalid JSON pointer ${JSON.stringify(p)}`);
  return p === '' ? [] : p.slice(1).split('/').map(unescapePointer);
}

function parentOf(doc: unknown, path: string[], op: string): { parent: Obj | unknown[]; last: string } {
  let cur: unknown = doc;
  for (const tok of path.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(tok)];
    else if (isObj(cur)) cur = cur[tok];
    else cur = undefined;
    if (cur === undefined) throw patchFailure(op, path);
  }
  if (!Array.isArray(cur) && !isObj(cur)) throw patchFailure(op, path);
  return { parent: cur, last: path[path.length - 1]! };
}

function patchFailure(op: string, path: string[]): ApiError {
  return new ApiError(
    422,
    'Invalid',
    `the server rejected our request due to an error in our request: jsonpatch ${op} operation does not apply: doc is missing path: "/${path.join('/')}"`,
  );
}

function getAt(doc: unknown, path: string[], op: string): unknown {
  let cur = doc;
  for (const tok of path) {
    if (Array.isArray(cur)) cur = cur[Number(tok)];
    else if (isObj(cur)) cur = cur[tok];
    else cur = undefined;
    if (cur === undefined) throw patchFailure(op, path);
  }
  return cur;
}

function arrayIndex(arr: unknown[], tok: string, forAdd: boolean, op: string, path: string[]): number {
  if (forAdd && tok === '-') return arr.length;
  if (!/^\d+$/.test(tok)) throw patchFailure(op, path);
  const i = Number(tok);
  if (i > arr.length || (!forAdd && i === arr.length)) throw patchFailure(op, path);
  return i;
}

function addAt(doc: unknown, path: string[], value: unknown, op: string): unknown {
  if (path.length === 0) return clone(value);
  const { parent, last } = parentOf(doc, path, op);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, true, op, path), 0, clone(value));
  else parent[last] = clone(value);
  return doc;
}

function removeAt(doc: unknown, path: string[], op: string): unknown {
  if (path.length === 0) throw patchFailure(op, path);
  const { parent, last } = parentOf(doc, path, op);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, false, op, path), 1);
  else {
    if (!(last in parent)) throw patchFailure(op, path);
    delete parent[last];
  }
  return doc;
}

/** RFC 6902 JSON patch; a failed `test` or a missing path is an error, as on the real server. */
export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest('json patch must be an array of operations');
  let doc = clone(target);
  for (const raw of ops) {
    if (!isObj(raw)) throw badRequest('json patch operation must be an object');
    const op = String(raw['op']);
    const path = parsePointer(raw['path']);
    switch (op) {
      case 'add':
        doc = addAt(doc, path, raw['value'], op);
        break;
      case 'remove':
        doc = removeAt(doc, path, op);
        break;
      case 'replace':
        getAt(doc, path, op);
        doc = addAt(removeAt(doc, path, op), path, raw['value'], op);
        break;
      case 'move':
      case 'copy': {
        const from = parsePointer(raw['from']);
        const v = clone(getAt(doc, from, op));
        if (op === 'move') doc = removeAt(doc, from, op);
        doc = addAt(doc, path, v, op);
        break;
      }
      case 'test':
        if (!jsonEqual(getAt(doc, path, op), raw['value'])) {
          throw new ApiError(
            422,
            'Invalid',
            `the server rejected our request due to an error in our request: testing value /${path.join('/')} failed`,
          );
        }
        break;
      default:
        throw badRequest(`Unexpected kind: ${op}`);
    }
  }
  return doc;
}

/**
 * Merge keys of the built-in list fields kubectl patches, by field name. Lists not named
 * here are replaced whole (atomic), which is also what the real server does for them.
 */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  ports: 'containerPort',
  imagePullSecrets: 'name',
  conditions: 'type',
  ownerReferences: 'uid',
  hostAliases: 'ip',
  topologySpreadConstraints: 'topologyKey',
  tolerations: 'key',
  containerStatuses: 'name',
  initContainerStatuses: 'name',
  addresses: 'type',
  readinessGates: 'conditionType',
  resourceClaims: 'name',
};

/** Service ports merge on `port`, container ports on `containerPort`: decided by the items. */
function mergeKeyFor(field: string, items: unknown[]): string | undefined {
  if (field === 'ports' && items.some((i) => isObj(i) && 'port' in i && !('containerPort' in i)))
    return 'port';
  return MERGE_KEYS[field];
}

/** Fields whose primitive lists merge as sets (patchStrategy merge on []string). */
const SET_LISTS = new Set(['finalizers']);

function smpList(field: string, current: unknown, patch: unknown[], order: unknown[] | undefined): unknown[] {
  const cur: unknown[] = Array.isArray(current) ? clone(current as unknown[]) : [];
  if (patch.some((p) => isObj(p) && p['$patch'] === 'replace')) {
    return patch.filter((p) => !(isObj(p) && p['$patch'] === 'replace')).map((p) => clone(p));
  }
  const key = mergeKeyFor(field, [...cur, ...patch]);
  if (!key) {
    if (SET_LISTS.has(field)) {
      const out = [...cur];
      for (const p of patch) if (!out.some((c) => jsonEqual(c, p))) out.push(clone(p));
      return out;
    }
    return clone(patch);
  }
  let out = cur;
  for (const p of patch) {
    if (!isObj(p)) continue;
    const idx = out.findIndex((c) => isObj(c) && jsonEqual(c[key], p[key]));
    if (p['$patch'] === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = strategicMergePatch(out[idx], p);
    else out.push(strategicMergePatch({}, p));
  }
  if (order) {
    const rank = (x: unknown): number => {
      const i = order.findIndex((o) => isObj(o) && isObj(x) && jsonEqual(o[key], x[key]));
      return i < 0 ? Number.MAX_SAFE_INTEGER : i;
    };
    out = [...out].sort((a, b) => rank(a) - rank(b));
  }
  return out;
}

/** Strategic merge patch (the subset kubectl's client-side apply uses). */
export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  if (patch['$patch'] === 'replace') {
    const rest = clone(patch);
    delete rest['$patch'];
    return rest;
  }
  if (patch['$patch'] === 'delete') return undefined;
  let out: Obj = isObj(target) ? clone(target) : {};
  const retain = patch['$retainKeys'];
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const drop = Array.isArray(v) ? v : [];
      const list = out[field];
      if (Array.isArray(list)) out[field] = list.filter((x) => !drop.some((d) => jsonEqual(d, x)));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    if (Array.isArray(v)) {
      const order = patch[`$setElementOrder/${k}`];
      out[k] = smpList(k, out[k], v, Array.isArray(order) ? order : undefined);
      continue;
    }
    const merged = isObj(v) ? strategicMergePatch(out[k], v) : clone(v);
    if (merged === undefined) delete out[k];
    else out[k] = merged;
  }
  if (Array.isArray(retain)) {
    const keep = new Set(retain.map(String));
    out = Object.fromEntries(Object.entries(out).filter(([k]) => keep.has(k)));
  }
  return out;
}
