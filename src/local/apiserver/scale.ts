/**
 * The scale subresource of Deployments and ReplicaSets (autoscaling/v1 Scale), which
 * `kubectl scale` reads and patches: a view of spec.replicas and status.replicas. A
 * write to it is an update of spec.replicas on the main object, through admission.
 */
import type { IncomingMessage } from 'node:http';
import { selectorString } from './apps.js';
import { badRequest, conflict, invalid } from './errors.js';
import { jsonPatch, mergePatch } from './patch.js';
import { isObj, metaOf, type Obj, type ResourceInfo } from './types.js';
import { parseJson, type Writes } from './writes.js';
import type { Objects, WriteOptions } from './objects.js';

/** The Scale view of a Deployment or ReplicaSet. */
export function toScale(o: Obj): Obj {
  const m = metaOf(o);
  const spec = isObj(o['spec']) ? o['spec'] : {};
  const status = isObj(o['status']) ? o['status'] : {};
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      creationTimestamp: m.creationTimestamp,
    },
    spec: { replicas: typeof spec['replicas'] === 'number' ? spec['replicas'] : 0 },
    status: {
      replicas: typeof status['replicas'] === 'number' ? status['replicas'] : 0,
      selector: selectorString(spec['selector']),
    },
  };
}

/** GET, PUT and PATCH on NAME/scale. */
export async function serveScale(
  objects: Objects,
  writes: Writes,
  req: IncomingMessage,
  info: ResourceInfo,
  ns: string | undefined,
  name: string,
  raw: string,
  opts: WriteOptions,
): Promise<Obj> {
  const cur = objects.get(info, ns, name);
  if (req.method === 'GET') return toScale(cur);
  let next: unknown;
  if (req.method === 'PUT') next = parseJson(raw);
  else if (req.method === 'PATCH') {
    const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    const body = parseJson(raw);
    // A Scale has no lists: a strategic merge patch of it is a merge patch.
    next =
      ct === 'application/json-patch+json' ? jsonPatch(toScale(cur), body) : mergePatch(toScale(cur), body);
  } else throw badRequest(`${req.method ?? ''} is not supported on ${info.resource}/scale`);
  if (!isObj(next)) throw badRequest('the body of the request was in an unknown format');
  const rv = metaOf(next).resourceVersion;
  if (req.method === 'PUT' && rv && rv !== metaOf(cur).resourceVersion)
    throw conflict({ group: info.group, kind: info.kind, name }, info.resource);
  const replicas = isObj(next['spec']) ? next['spec']['replicas'] : undefined;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    throw invalid({ group: 'autoscaling', kind: 'Scale', name }, [
      {
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
        field: 'spec.replicas',
      },
    ]);
  }
  const spec = isObj(cur['spec']) ? cur['spec'] : {};
  const updated = await writes.updateAdmitted(
    info,
    ns,
    name,
    { ...cur, spec: { ...spec, replicas } },
    undefined,
    opts,
  );
  return toScale(updated);
}
