/** Label selectors (equality and set-based) and field selectors, parsed as the real server does. */
import { badRequest } from './errors.js';
import { isObj, metaOf, type Obj } from './types.js';

type LabelReq =
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | 'notexists'; key: string };

/** A parsed label selector; matches(labels) decides membership. */
export interface LabelSelector {
  matches(labels: Record<string, string> | undefined): boolean;
}

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x.length > 0);
}

function parseLabelReq(term: string): LabelReq {
  let m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
  if (m) {
    const values = m[3]!.split(',').map((v) => v.trim());
    return { op: m[2] as 'in' | 'notin', key: m[1]!, values };
  }
  m = /^!\s*([\w./-]+)$/.exec(term);
  if (m) return { op: 'notexists', key: m[1]! };
  m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(term);
  if (m) return { op: m[2] === '!=' ? 'neq' : 'eq', key: m[1]!, value: m[3]! };
  m = /^([\w./-]+)$/.exec(term);
  if (m) return { op: 'exists', key: m[1]! };
  throw badRequest(`unable to parse requirement: ${JSON.stringify(term)}`);
}

function matchReq(r: LabelReq, labels: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const v = labels[r.key];
  switch (r.op) {
    case 'eq':
      return has && v === r.value;
    case 'neq':
      return !has || v !== r.value;
    case 'in':
      return has && r.values.includes(v!);
    case 'notin':
      return !has || !r.values.includes(v!);
    case 'exists':
      return has;
    case 'notexists':
      return !has;
  }
}

/** Parses `labelSelector`; an empty or missing selector matches everything. */
export function parseLabelSelector(s: string | null | undefined): LabelSelector {
  const reqs = s ? splitTop(s).map(parseLabelReq) : [];
  return { matches: (labels) => reqs.every((r) => matchReq(r, labels ?? {})) };
}

/** A parsed field selector. */
export interface FieldSelector {
  matches(obj: Obj): boolean;
}

/** The value of a dotted field path, as a string ('' when absent). */
export function fieldValue(obj: Obj, path: string): string {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (!isObj(cur)) return '';
    cur = cur[part];
  }
  if (cur === undefined || cur === null) return '';
  if (typeof cur === 'string' || typeof cur === 'number' || typeof cur === 'boolean') return String(cur);
  return JSON.stringify(cur);
}

/**
 * Parses `fieldSelector` against the labels a resource supports (metadata.name and
 * metadata.namespace always); an unsupported label is a 400, as on a real server.
 */
export function parseFieldSelector(s: string | null | undefined, supported: string[]): FieldSelector {
  const terms = (s ? s.split(',') : []).map((t) => t.trim()).filter((t) => t);
  const allowed = new Set(['metadata.name', 'metadata.namespace', ...supported]);
  const reqs = terms.map((t) => {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(t);
    if (!m) throw badRequest(`invalid selector: '${s}'; can't understand '${t}'`);
    if (!allowed.has(m[1]!)) throw badRequest(`field label not supported: ${m[1]}`);
    return { path: m[1]!, neq: m[2] === '!=', value: m[3]! };
  });
  return {
    matches: (obj) =>
      reqs.every((r) => {
        const v = r.path === 'metadata.namespace' ? (metaOf(obj).namespace ?? '') : fieldValue(obj, r.path);
        return r.neq ? v !== r.value : v === r.value;
      }),
  };
}
