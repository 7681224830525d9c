/**
 * A minimal OpenAPI v3 surface: the root index and one document per group version, listing
 * each resource's paths with their GroupVersionKind and the `fieldValidation` and `dryRun`
 * query parameters. That is what kubectl reads to decide that validation happens on the
 * server (it then sends fieldValidation=Strict); no schemas are published, so kubectl
 * computes apply patches from its compiled-in types (built-ins) or as merge patches (CRs).
 */
import type { Registry } from './registry.js';
import type { Obj, ResourceInfo } from './types.js';

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

/** GET /openapi/v3. */
export function openapiRoot(registry: Registry, hash: string): Obj {
  const paths: Obj = {};
  for (const r of registry.all()) {
    const p = gvPath(r.group, r.version);
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
  }
  return { paths };
}

const QUERY = ['dryRun', 'fieldManager', 'fieldValidation', 'pretty'].map((name) => ({
  name,
  in: 'query',
  schema: { type: 'string', uniqueItems: true },
}));

function operations(
  r: ResourceInfo,
  item: boolean,
  kind: { group: string; version: string; kind: string } = r,
): Obj {
  const gvk = {
    'x-kubernetes-group-version-kind': { group: kind.group, version: kind.version, kind: kind.kind },
  };
  const op = (id: string, action: string): Obj => ({
    operationId: `${id}${r.kind}`,
    parameters: QUERY,
    responses: { '200': { description: 'OK' } },
    'x-kubernetes-action': action,
    ...gvk,
  });
  return item
    ? {
        get: op('read', 'get'),
        put: op('replace', 'put'),
        patch: op('patch', 'patch'),
        delete: op('delete', 'delete'),
      }
    : { get: op('list', 'list'), post: op('create', 'post') };
}

const SCALE = { group: 'autoscaling', version: 'v1', kind: 'Scale' };

/** GET /openapi/v3/api/v1 or /openapi/v3/apis/GROUP/VERSION, or undefined. */
export function openapiGroupVersion(registry: Registry, group: string, version: string): Obj | undefined {
  const rs = registry.inGroupVersion(group, version);
  if (!rs.length) return undefined;
  const paths: Obj = {};
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  for (const r of rs) {
    const coll = r.namespaced ? `${base}/namespaces/{namespace}/${r.resource}` : `${base}/${r.resource}`;
    paths[coll] = operations(r, false);
    paths[`${coll}/{name}`] = operations(r, true);
    if (r.statusSubresource) paths[`${coll}/{name}/status`] = operations(r, true);
    if (r.scaleSubresource) paths[`${coll}/{name}/scale`] = operations(r, true, SCALE);
  }
  return {
    openapi: '3.0.0',
    info: { title: 'fdckpt local control plane', version: 'v1.32.0' },
    paths,
    components: { schemas: {} },
  };
}

function protoField(field: number, payload: Buffer): Buffer {
  const len: number[] = [];
  let n = payload.length;
  do {
    len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...len]), payload]);
}

/**
 * GET /openapi/v2 as the protobuf kubectl asks for (gnostic openapi_v2.Document): swagger
 * "2.0", info, and no paths or definitions. Older kubectl (Debian's 1.20) downloads it to
 * validate client-side; with no definitions it validates nothing and leaves the checks to
 * the server, and builds apply patches from its compiled-in types.
 */
export function openapiV2Protobuf(): Buffer {
  const info = Buffer.concat([
    protoField(1, Buffer.from('fdckpt local control plane')),
    protoField(2, Buffer.from('v1.32.0')),
  ]);
  return Buffer.concat([
    protoField(1, Buffer.from('2.0')),
    protoField(2, info),
    protoField(8, Buffer.alloc(0)),
  ]);
}

/** GET /openapi/v2 as JSON, for clients that ask for it. */
export function openapiV2Json(): Obj {
  return {
    swagger: '2.0',
    info: { title: 'fdckpt local control plane', version: 'v1.32.0' },
    paths: {},
    definitions: {},
  };
}
