/**
 * The JSONPath subset CRD printer columns use: `.a.b`, `.a[0]`, `.a[*]`, and filters
 * `.a[?(@.type=="Ready")].status`. Returns every value found, in order.
 */
import { badRequest } from './errors.js';
import { isObj } from './types.js';

type Step =
  { field: string } | { index: number } | { all: true } | { filter: { path: string[]; value: string } };

function parse(path: string): Step[] {
  const steps: Step[] = [];
  const re = /\.([\w-]+)|\[(\d+)\]|\[\*\]|\[\?\(@\.([\w.-]+)\s*==\s*["']([^"']*)["']\)\]/gy;
  let p = path.trim();
  if (p.startsWith('{') && p.endsWith('}')) p = p.slice(1, -1);
  if (p.startsWith('$')) p = p.slice(1);
  let m: RegExpExecArray | null;
  let pos = 0;
  re.lastIndex = 0;
  while (pos < p.length && (m = re.exec(p))) {
    if (m[1] !== undefined) steps.push({ field: m[1] });
    else if (m[2] !== undefined) steps.push({ index: Number(m[2]) });
    else if (m[3] !== undefined) steps.push({ filter: { path: m[3].split('.'), value: m[4]! } });
    else steps.push({ all: true });
    pos = re.lastIndex;
  }
  if (pos !== p.length) throw badRequest(`unsupported JSONPath ${JSON.stringify(path)}`);
  return steps;
}

function dig(v: unknown, path: string[]): unknown {
  let cur = v;
  for (const f of path) cur = isObj(cur) ? cur[f] : undefined;
  return cur;
}

/** All values `path` selects in `root`. */
export function jsonPathValues(root: unknown, path: string): unknown[] {
  let cur: unknown[] = [root];
  for (const step of parse(path)) {
    const next: unknown[] = [];
    for (const v of cur) {
      if ('field' in step) {
        if (isObj(v) && v[step.field] !== undefined) next.push(v[step.field]);
      } else if ('index' in step) {
        if (Array.isArray(v) && step.index < v.length) next.push(v[step.index]);
      } else if ('all' in step) {
        if (Array.isArray(v)) next.push(...(v as unknown[]));
        else if (isObj(v)) next.push(...Object.values(v));
      } else if (Array.isArray(v)) {
        const f = step.filter;
        for (const x of v as unknown[]) if (String(dig(x, f.path)) === f.value) next.push(x);
      }
    }
    cur = next;
  }
  return cur;
}

/** Checks a printer column path parses (used when a CRD is created). */
export function checkJsonPath(path: string): void {
  parse(path);
}
