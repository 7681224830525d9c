/**
 * Discovery documents: /version, /api, /api/v1, /apis, /apis/GROUP[/VERSION]. Answered in
 * the legacy (unaggregated) form; clients that ask for aggregated discovery
 * (apidiscovery.k8s.io/v2) see a plain application/json answer and fall back, as they do
 * against older servers.
 */
import type { Registry } from './registry.js';
import type { Obj, ResourceInfo } from './types.js';

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

/** GET /version. */
export function versionInfo(): Obj {
  return {
    major: '1',
    minor: '32',
    gitVersion: 'v1.32.0-fdckpt-local',
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2026-01-01T00:00:00Z',
    goVersion: 'n/a (fdckpt local control plane, Node.js)',
    compiler: 'node',
    platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
  };
}

/** GET /api. */
export function coreVersions(serverAddress: string): Obj {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function groupEntry(group: string, versions: string[]): Obj {
  const gv = versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
  return { name: group, versions: gv, preferredVersion: gv[0] };
}

/** Orders versions as Kubernetes does: GA over beta over alpha, higher numbers first. */
export function sortVersions(versions: string[]): string[] {
  const rank = (v: string): [number, number, number] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [3, 0, 0];
    const stage = m[2] === undefined ? 0 : m[2] === 'beta' ? 1 : 2;
    return [stage, -Number(m[1]), -Number(m[3] ?? 0)];
  };
  return [...versions].sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    return ra[0] - rb[0] || ra[1] - rb[1] || ra[2] - rb[2] || a.localeCompare(b);
  });
}

/** GET /apis. */
export function groupList(registry: Registry): Obj {
  const groups = [...registry.groups()].map(([g, vs]) => groupEntry(g, sortVersions(vs)));
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

/** GET /apis/GROUP, or undefined when the group is not served. */
export function group(registry: Registry, name: string): Obj | undefined {
  const vs = registry.groups().get(name);
  if (!vs) return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(name, sortVersions(vs)) };
}

function resourceEntries(r: ResourceInfo): Obj[] {
  const main: Obj = {
    name: r.resource,
    singularName: r.singular,
    namespaced: r.namespaced,
    kind: r.kind,
    verbs: VERBS,
    ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
    ...(r.categories.length ? { categories: r.categories } : {}),
    storageVersionHash: Buffer.from(r.storageKey).toString('base64').slice(0, 11),
  };
  const out = [main];
  if (r.statusSubresource) {
    out.push({
      name: `${r.resource}/status`,
      singularName: '',
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: ['get', 'patch', 'update'],
    });
  }
  if (r.scaleSubresource) {
    // kubectl scale finds the Scale kind (group, version) from this entry.
    out.push({
      name: `${r.resource}/scale`,
      singularName: '',
      namespaced: r.namespaced,
      group: 'autoscaling',
      version: 'v1',
      kind: 'Scale',
      verbs: ['get', 'patch', 'update'],
    });
  }
  if (r.storageKey === 'pods') {
    out.push({
      name: 'pods/binding',
      singularName: '',
      namespaced: true,
      kind: 'Binding',
      verbs: ['create'],
    });
    out.push({ name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] });
  }
  return out;
}

/** GET /api/v1 or /apis/GROUP/VERSION, or undefined when not served. */
export function resourceList(registry: Registry, group: string, version: string): Obj | undefined {
  const rs = registry.inGroupVersion(group, version);
  if (!rs.length) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources: rs.flatMap(resourceEntries),
  };
}
