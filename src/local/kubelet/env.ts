/**
 * A container's environment as a kubelet builds it: `env` values with `$(VAR)`
 * references expanded, `valueFrom` (fieldRef, configMapKeyRef, secretKeyRef) and
 * `envFrom` (configMapRef, secretRef). A missing, non-optional source is a
 * CreateContainerConfigError, as on a node.
 */
import type { CoreV1Api, V1Container, V1Pod } from '@kubernetes/client-node';

/** Why a container's environment could not be built. */
export class EnvError extends Error {
  override readonly name = 'EnvError';
}

function fieldRef(pod: V1Pod, path: string, podIP: string, hostIP: string): string {
  const m = pod.metadata ?? {};
  const label = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(path);
  if (label) return (label[1] === 'labels' ? m.labels : m.annotations)?.[label[2]!] ?? '';
  switch (path) {
    case 'metadata.name':
      return m.name ?? '';
    case 'metadata.namespace':
      return m.namespace ?? '';
    case 'metadata.uid':
      return m.uid ?? '';
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? 'default';
    case 'status.podIP':
    case 'status.podIPs':
      return podIP;
    case 'status.hostIP':
    case 'status.hostIPs':
      return hostIP;
    default:
      throw new EnvError(`unsupported fieldRef ${JSON.stringify(path)}`);
  }
}

async function readMap(
  core: CoreV1Api,
  ns: string,
  kind: 'ConfigMap' | 'Secret',
  name: string,
  optional: boolean,
): Promise<Record<string, string> | undefined> {
  try {
    if (kind === 'ConfigMap') return (await core.readNamespacedConfigMap({ namespace: ns, name })).data ?? {};
    const data = (await core.readNamespacedSecret({ namespace: ns, name })).data ?? {};
    return Object.fromEntries(
      Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
    );
  } catch (e) {
    if ((e as { code?: number }).code === 404) {
      if (optional) return undefined;
      throw new EnvError(`${kind.toLowerCase()} "${name}" not found`);
    }
    throw e;
  }
}

/** Expands $(VAR) from what is defined so far; $$(VAR) escapes. */
function expand(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (all: string, name?: string) => {
    if (all === '$$') return '$';
    return name !== undefined && name in env ? env[name]! : all;
  });
}

/** The environment of one container of `pod`. */
export async function containerEnv(
  core: CoreV1Api,
  pod: V1Pod,
  c: V1Container,
  podIP: string,
  hostIP: string,
): Promise<Record<string, string>> {
  const ns = pod.metadata?.namespace ?? 'default';
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    const ref = from.configMapRef ?? from.secretRef;
    if (!ref?.name) continue;
    const data = await readMap(
      core,
      ns,
      from.configMapRef ? 'ConfigMap' : 'Secret',
      ref.name,
      ref.optional === true,
    );
    for (const [k, v] of Object.entries(data ?? {})) env[`${from.prefix ?? ''}${k}`] = v;
  }
  for (const e of c.env ?? []) {
    const vf = e.valueFrom;
    if (!vf) {
      env[e.name] = expand(e.value ?? '', env);
    } else if (vf.fieldRef) {
      env[e.name] = fieldRef(pod, vf.fieldRef.fieldPath, podIP, hostIP);
    } else if (vf.configMapKeyRef || vf.secretKeyRef) {
      const ref = (vf.configMapKeyRef ?? vf.secretKeyRef)!;
      const kind = vf.configMapKeyRef ? 'ConfigMap' : 'Secret';
      const data = await readMap(core, ns, kind, ref.name ?? '', ref.optional === true);
      const value = data?.[ref.key];
      if (value !== undefined) env[e.name] = value;
      else if (data && ref.optional !== true)
        throw new EnvError(`couldn't find key ${ref.key} in ${kind} ${ns}/${ref.name ?? ''}`);
    } else {
      throw new EnvError(`env ${e.name}: only fieldRef, configMapKeyRef and secretKeyRef are supported`);
    }
  }
  return env;
}
