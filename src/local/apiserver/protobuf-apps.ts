/**
 * A protobuf apps/v1 Deployment to JSON: `kubectl create deployment` sends its object
 * that way (client-go's typed client) and nothing lets it send JSON. Only the fields
 * that command and plain manifests use are known, by their numbers in k8s.io/api's
 * generated.proto (checked against what kubectl 1.32 sends). proto2 writes every
 * non-pointer field, so empty strings, zeros and empty messages are read as absent;
 * a field this table does not know that carries a value is refused with 415 naming
 * it, never dropped.
 */
import { ApiError } from './errors.js';
import { fields, MAGIC, type Field } from './protobuf.js';
import type { Obj } from './types.js';

/**
 * How a field is read: a string, an integer (omitted when 0, or kept when the Go field
 * is a pointer), a bool, repeated strings, a map<string,string>, a message, or a field
 * the server sets itself and ignores here.
 */
type Kind = 'string' | 'int' | 'int*' | 'bool' | 'strings' | 'map' | 'ignore' | Message | [Message];
interface Message {
  name: string;
  fields: Record<number, [string, Kind]>;
}

const STRATEGY: Message = { name: 'DeploymentStrategy', fields: { 1: ['type', 'string'] } };
const SELECTOR: Message = {
  name: 'LabelSelector',
  fields: {
    1: ['matchLabels', 'map'],
    2: [
      'matchExpressions',
      [
        {
          name: 'LabelSelectorRequirement',
          fields: { 1: ['key', 'string'], 2: ['operator', 'string'], 3: ['values', 'strings'] },
        },
      ],
    ],
  },
};
// ObjectMeta: uid, resourceVersion, generation, creationTimestamp and managedFields are the server's.
const META: Message = {
  name: 'ObjectMeta',
  fields: {
    1: ['name', 'string'],
    2: ['generateName', 'string'],
    3: ['namespace', 'string'],
    5: ['uid', 'ignore'],
    6: ['resourceVersion', 'string'],
    7: ['generation', 'ignore'],
    8: ['creationTimestamp', 'ignore'],
    11: ['labels', 'map'],
    12: ['annotations', 'map'],
    17: ['managedFields', 'ignore'],
  },
};
const PORT: Message = {
  name: 'ContainerPort',
  fields: {
    1: ['name', 'string'],
    2: ['hostPort', 'int'],
    3: ['containerPort', 'int'],
    4: ['protocol', 'string'],
    5: ['hostIP', 'string'],
  },
};
const CONTAINER: Message = {
  name: 'Container',
  fields: {
    1: ['name', 'string'],
    2: ['image', 'string'],
    3: ['command', 'strings'],
    4: ['args', 'strings'],
    5: ['workingDir', 'string'],
    6: ['ports', [PORT]],
    7: ['env', [{ name: 'EnvVar', fields: { 1: ['name', 'string'], 2: ['value', 'string'] } }]],
    // ResourceRequirements: kubectl sends it empty; requests and limits are not read here.
    8: ['resources', { name: 'ResourceRequirements', fields: {} }],
    13: ['terminationMessagePath', 'string'],
    14: ['imagePullPolicy', 'string'],
    16: ['stdin', 'bool'],
    17: ['stdinOnce', 'bool'],
    18: ['tty', 'bool'],
    20: ['terminationMessagePolicy', 'string'],
  },
};
const POD_SPEC: Message = {
  name: 'PodSpec',
  fields: {
    2: ['containers', [CONTAINER]],
    3: ['restartPolicy', 'string'],
    4: ['terminationGracePeriodSeconds', 'int*'],
    6: ['dnsPolicy', 'string'],
    7: ['nodeSelector', 'map'],
    8: ['serviceAccountName', 'string'],
    10: ['nodeName', 'string'],
    19: ['schedulerName', 'string'],
  },
};
const DEPLOYMENT: Message = {
  name: 'Deployment',
  fields: {
    1: ['metadata', META],
    2: [
      'spec',
      {
        name: 'DeploymentSpec',
        fields: {
          1: ['replicas', 'int*'],
          2: ['selector', SELECTOR],
          3: [
            'template',
            { name: 'PodTemplateSpec', fields: { 1: ['metadata', META], 2: ['spec', POD_SPEC] } },
          ],
          4: ['strategy', STRATEGY],
          5: ['minReadySeconds', 'int'],
          6: ['revisionHistoryLimit', 'int*'],
          7: ['paused', 'bool'],
          9: ['progressDeadlineSeconds', 'int*'],
        },
      },
    ],
    // The status a client sends is dropped by the server anyway.
    3: ['status', 'ignore'],
  },
};

/** Whether a field carries nothing: 0, false, "", or an empty message. */
function empty(f: Field): boolean {
  return f.varint !== undefined ? f.varint === 0n : (f.bytes?.length ?? 0) === 0;
}

function decode(m: Message, buf: Buffer, path: string): Obj {
  const out: Obj = {};
  for (const f of fields(buf)) {
    const known = m.fields[f.num];
    if (!known) {
      if (empty(f)) continue;
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        `protobuf field ${f.num} of ${m.name} (at ${path || 'the top'}) is not decoded by the local control plane; send the object as JSON (kubectl apply -f)`,
      );
    }
    const [name, kind] = known;
    const at = path ? `${path}.${name}` : name;
    const text = (): string => (f.bytes ?? Buffer.alloc(0)).toString('utf8');
    if (kind === 'ignore') continue;
    if (kind === 'string') {
      if (text()) out[name] = text();
    } else if (kind === 'int' || kind === 'int*') {
      const v = Number(BigInt.asIntN(64, f.varint ?? 0n));
      if (v !== 0 || kind === 'int*') out[name] = v;
    } else if (kind === 'bool') {
      if (f.varint) out[name] = true;
    } else if (kind === 'strings') {
      out[name] = [...((out[name] as string[] | undefined) ?? []), text()];
    } else if (kind === 'map') {
      const entry = fields(f.bytes ?? Buffer.alloc(0));
      const key = entry.find((e) => e.num === 1)?.bytes?.toString('utf8') ?? '';
      const value = entry.find((e) => e.num === 2)?.bytes?.toString('utf8') ?? '';
      out[name] = { ...(out[name] ?? {}), [key]: value };
    } else if (Array.isArray(kind)) {
      out[name] = [
        ...((out[name] as Obj[] | undefined) ?? []),
        decode(kind[0], f.bytes ?? Buffer.alloc(0), at),
      ];
    } else {
      const sub = decode(kind, f.bytes ?? Buffer.alloc(0), at);
      if (Object.keys(sub).length) out[name] = sub;
    }
  }
  return out;
}

/**
 * The JSON of a protobuf body (`k8s\0` + runtime.Unknown) if it is an apps/v1
 * Deployment; undefined for any other kind.
 */
export function decodeProtobufObject(body: Buffer): Obj | undefined {
  if (!body.subarray(0, 4).equals(MAGIC)) return undefined;
  try {
    const unknown = fields(body.subarray(4));
    const typeMeta = fields(unknown.find((f) => f.num === 1)?.bytes ?? Buffer.alloc(0));
    const apiVersion = typeMeta.find((f) => f.num === 1)?.bytes?.toString('utf8');
    const kind = typeMeta.find((f) => f.num === 2)?.bytes?.toString('utf8');
    if (apiVersion !== 'apps/v1' || kind !== 'Deployment') return undefined;
    const raw = unknown.find((f) => f.num === 2)?.bytes ?? Buffer.alloc(0);
    return { apiVersion, kind, ...decode(DEPLOYMENT, raw, '') };
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError(400, 'BadRequest', `the protobuf body could not be decoded: ${(e as Error).message}`);
  }
}
