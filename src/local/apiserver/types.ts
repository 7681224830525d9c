/** The shapes the API double works with: untyped JSON objects and resource descriptions. */

/** A JSON object as stored: any Kubernetes object. */
export type Obj = Record<string, unknown>;

/** The metadata fields the server manages. */
export interface Meta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: { uid: string; kind: string; name: string; apiVersion: string }[];
  [k: string]: unknown;
}

/** One additionalPrinterColumn (apiextensions/v1 CustomResourceColumnDefinition). */
export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  format?: string;
  description?: string;
  priority?: number;
}

/** An OpenAPI v3 schema node, as a CRD carries it. */
export interface Schema {
  type?: string;
  format?: string;
  description?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  nullable?: boolean;
  default?: unknown;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  [k: string]: unknown;
}

/** Everything the server knows about one served resource (one group/version/plural). */
export interface ResourceInfo {
  group: string;
  version: string;
  /** Plural name, as in URLs. */
  resource: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Whether /status is a separate subresource (spec and status written apart). */
  statusSubresource: boolean;
  /** Whether NAME/scale is served (built-in apps resources only). */
  scaleSubresource: boolean;
  /** Field selector labels beyond metadata.name/metadata.namespace. */
  fieldLabels: string[];
  /** For custom resources: the schema of this version. */
  schema?: Schema;
  printerColumns: PrinterColumn[];
  /** Set for resources served from a CRD: the CRD's name. */
  crd?: string;
  /** The version objects are stored in; every served version shares one store. */
  storageKey: string;
}

/** apiVersion string for a resource. */
export function apiVersionOf(info: Pick<ResourceInfo, 'group' | 'version'>): string {
  return info.group ? `${info.group}/${info.version}` : info.version;
}

/** The metadata of an object, typed. */
export function metaOf(obj: Obj): Meta {
  const m = obj['metadata'];
  if (m && typeof m === 'object' && !Array.isArray(m)) return m as Meta;
  const fresh: Meta = {};
  obj['metadata'] = fresh;
  return fresh;
}

/** Deep copy of a JSON value. */
export function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Structural equality of JSON values. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => jsonEqual(x, bb[i]));
  }
  const ao = a as Obj;
  const bo = b as Obj;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => jsonEqual(ao[k], bo[k]));
}

/** The value as an array, or [] when it is not one. */
export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? (v as unknown[]) : [];
}

/** True for a plain JSON object. */
export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Fields of built-in kinds that are metav1.MicroTime and keep their fraction. */
const MICRO_TIME_FIELDS = new Set(['renewTime', 'acquireTime', 'eventTime']);

/**
 * Drops the fractional seconds of built-in timestamps (metav1.Time has second precision),
 * as the real server does when it decodes and re-encodes a typed object.
 */
export function truncateTimes(v: unknown, key = ''): unknown {
  if (typeof v === 'string') {
    // Only timestamp fields: user data (ConfigMap values, CRD defaults) is left alone.
    if (MICRO_TIME_FIELDS.has(key) || !/(Time|Timestamp|At)$/.test(key)) return v;
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d+Z$/.exec(v);
    return m ? `${m[1]}Z` : v;
  }
  if (Array.isArray(v)) return v.map((x) => truncateTimes(x, key));
  if (isObj(v)) {
    for (const [k, x] of Object.entries(v)) v[k] = truncateTimes(x, k);
  }
  return v;
}
