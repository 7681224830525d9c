/**
 * Custom resources checked against their CRD's OpenAPI v3 schema, as the real server
 * does: defaults applied, unknown fields pruned (reported for fieldValidation=Strict),
 * then types, required, enums, patterns and bounds checked, each failure a cause with
 * the field path and the reason name the real server uses.
 */
import type { StatusCause } from './errors.js';
import { clone, isObj, type Obj, type Schema } from './types.js';

/** The outcome of validating one object. */
export interface ValidationResult {
  causes: StatusCause[];
  /** Paths of fields that were pruned because the schema does not know them. */
  unknownFields: string[];
}

function typeOk(v: unknown, s: Schema): boolean {
  if (s['x-kubernetes-int-or-string']) return typeof v === 'string' || Number.isInteger(v);
  switch (s.type) {
    case undefined:
      return true;
    case 'object':
      return isObj(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return Number.isInteger(v);
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    default:
      return true;
  }
}

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
}

/** Fills `default`s of absent properties, recursively, like the real server's defaulting. */
function applyDefaults(v: unknown, s: Schema): void {
  if (isObj(v) && s.properties) {
    for (const [k, sub] of Object.entries(s.properties)) {
      if (v[k] === undefined && sub.default !== undefined) v[k] = clone(sub.default);
      if (v[k] !== undefined) applyDefaults(v[k], sub);
    }
  }
  if (Array.isArray(v) && s.items) for (const x of v) applyDefaults(x, s.items);
  if (isObj(v) && isObj(s.additionalProperties)) {
    for (const x of Object.values(v)) applyDefaults(x, s.additionalProperties);
  }
}

/** Removes fields the schema does not specify (structural pruning); records their paths. */
function prune(v: unknown, s: Schema, path: string, unknown: string[]): void {
  if (s['x-kubernetes-preserve-unknown-fields'] && !s.properties) return;
  if (isObj(v)) {
    if (s.properties) {
      for (const k of Object.keys(v)) {
        const sub = s.properties[k];
        if (sub) prune(v[k], sub, `${path}.${k}`, unknown);
        else if (!s['x-kubernetes-preserve-unknown-fields'] && !s.additionalProperties) {
          unknown.push(`${path}.${k}`.replace(/^\./, ''));
          delete v[k];
        }
      }
    } else if (isObj(s.additionalProperties)) {
      for (const [k, x] of Object.entries(v)) prune(x, s.additionalProperties, `${path}.${k}`, unknown);
    }
  }
  if (Array.isArray(v) && s.items) v.forEach((x, i) => prune(x, s.items!, `${path}[${i}]`, unknown));
}

function check(v: unknown, s: Schema, path: string, out: StatusCause[]): void {
  const field = path.replace(/^\./, '');
  if (v === null) {
    if (!s.nullable)
      out.push({
        reason: 'FieldValueTypeInvalid',
        message: `Invalid value: "null": ${field} in body must be of type ${s.type ?? 'object'}: "null"`,
        field,
      });
    return;
  }
  if (!typeOk(v, s)) {
    const actual = Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v;
    out.push({
      reason: 'FieldValueTypeInvalid',
      message: `Invalid value: "${actual}": ${field} in body must be of type ${s.type}: "${actual}"`,
      field,
    });
    return;
  }
  if (s.enum && !s.enum.some((e) => e === v)) {
    const allowed = s.enum.map(show).join(', ');
    out.push({
      reason: 'FieldValueNotSupported',
      message: `Unsupported value: ${show(v)}: supported values: ${allowed}`,
      field,
    });
  }
  if (typeof v === 'string') {
    if (s.pattern !== undefined && !new RegExp(s.pattern, 'u').test(v)) {
      out.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${show(v)}: ${field} in body should match '${s.pattern}'`,
        field,
      });
    }
    if (s.minLength !== undefined && [...v].length < s.minLength) {
      out.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${show(v)}: ${field} in body should be at least ${s.minLength} chars long`,
        field,
      });
    }
    if (s.maxLength !== undefined && [...v].length > s.maxLength) {
      out.push({
        reason: 'FieldValueTooLong',
        message: `Too long: may not be more than ${s.maxLength} bytes`,
        field,
      });
    }
  }
  if (typeof v === 'number') {
    if (s.minimum !== undefined && (s.exclusiveMinimum ? v <= s.minimum : v < s.minimum)) {
      const rel = s.exclusiveMinimum ? 'greater than' : 'greater than or equal to';
      out.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${v}: ${field} in body should be ${rel} ${s.minimum}`,
        field,
      });
    }
    if (s.maximum !== undefined && (s.exclusiveMaximum ? v >= s.maximum : v > s.maximum)) {
      const rel = s.exclusiveMaximum ? 'less than' : 'less than or equal to';
      out.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${v}: ${field} in body should be ${rel} ${s.maximum}`,
        field,
      });
    }
  }
  if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems) {
      out.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${v.length}: ${field} in body should have at least ${s.minItems} items`,
        field,
      });
    }
    if (s.maxItems !== undefined && v.length > s.maxItems) {
      out.push({
        reason: 'FieldValueTooMany',
        message: `Too many: ${v.length}: must have at most ${s.maxItems} items`,
        field,
      });
    }
    if (s.items) v.forEach((x, i) => check(x, s.items!, `${path}[${i}]`, out));
  }
  if (isObj(v)) {
    for (const r of s.required ?? []) {
      if (v[r] === undefined)
        out.push({
          reason: 'FieldValueRequired',
          message: 'Required value',
          field: `${path}.${r}`.replace(/^\./, ''),
        });
    }
    const n = Object.keys(v).length;
    if (s.minProperties !== undefined && n < s.minProperties) {
      out.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${n}: ${field} in body should have at least ${s.minProperties} properties`,
        field,
      });
    }
    if (s.maxProperties !== undefined && n > s.maxProperties) {
      out.push({
        reason: 'FieldValueTooMany',
        message: `Too many: ${n}: must have at most ${s.maxProperties} items`,
        field,
      });
    }
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) continue;
      const sub = s.properties?.[k] ?? (isObj(s.additionalProperties) ? s.additionalProperties : undefined);
      if (sub) check(x, sub, `${path}.${k}`, out);
    }
  }
}

/**
 * Defaults, prunes and validates `obj` (in place) against a CRD version's schema.
 * `metadata`, `apiVersion` and `kind` are the server's business, never pruned.
 */
export function validateCustomResource(obj: Obj, schema: Schema | undefined): ValidationResult {
  const causes: StatusCause[] = [];
  const unknownFields: string[] = [];
  if (!schema) return { causes, unknownFields };
  const body: Obj = { ...obj };
  delete body['metadata'];
  delete body['apiVersion'];
  delete body['kind'];
  applyDefaults(body, schema);
  prune(body, schema, '', unknownFields);
  check(
    body,
    {
      ...schema,
      required: (schema.required ?? []).filter((r) => !['metadata', 'apiVersion', 'kind'].includes(r)),
    },
    '',
    causes,
  );
  for (const k of Object.keys(obj)) if (!['metadata', 'apiVersion', 'kind'].includes(k)) delete obj[k];
  Object.assign(obj, body);
  return { causes, unknownFields };
}
