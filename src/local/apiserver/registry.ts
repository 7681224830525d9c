/**
 * What the server serves: the built-in resources (core v1 and a few groups the operator
 * and kubectl need) and, dynamically, every version of every established CRD.
 */
import type { PrinterColumn, ResourceInfo, Schema } from './types.js';

interface BuiltinSpec {
  group: string;
  version: string;
  resource: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  status?: boolean;
  /** Serves NAME/scale (autoscaling/v1 Scale over spec.replicas). */
  scale?: boolean;
  fieldLabels?: string[];
}

const BUILTINS: BuiltinSpec[] = [
  {
    group: '',
    version: 'v1',
    resource: 'namespaces',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    status: true,
    fieldLabels: ['status.phase'],
  },
  {
    group: '',
    version: 'v1',
    resource: 'pods',
    kind: 'Pod',
    namespaced: true,
    shortNames: ['po'],
    categories: ['all'],
    status: true,
    fieldLabels: [
      'spec.nodeName',
      'spec.restartPolicy',
      'spec.schedulerName',
      'spec.serviceAccountName',
      'status.phase',
      'status.podIP',
      'status.nominatedNodeName',
    ],
  },
  {
    group: '',
    version: 'v1',
    resource: 'nodes',
    kind: 'Node',
    namespaced: false,
    shortNames: ['no'],
    status: true,
    fieldLabels: ['spec.unschedulable'],
  },
  {
    group: '',
    version: 'v1',
    resource: 'events',
    kind: 'Event',
    namespaced: true,
    shortNames: ['ev'],
    fieldLabels: [
      'involvedObject.kind',
      'involvedObject.namespace',
      'involvedObject.name',
      'involvedObject.uid',
      'involvedObject.apiVersion',
      'involvedObject.resourceVersion',
      'involvedObject.fieldPath',
      'reason',
      'reportingComponent',
      'source',
      'type',
    ],
  },
  {
    group: '',
    version: 'v1',
    resource: 'configmaps',
    kind: 'ConfigMap',
    namespaced: true,
    shortNames: ['cm'],
  },
  { group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true, fieldLabels: ['type'] },
  {
    group: '',
    version: 'v1',
    resource: 'services',
    kind: 'Service',
    namespaced: true,
    shortNames: ['svc'],
    categories: ['all'],
    status: true,
  },
  {
    group: '',
    version: 'v1',
    resource: 'serviceaccounts',
    kind: 'ServiceAccount',
    namespaced: true,
    shortNames: ['sa'],
  },
  { group: 'coordination.k8s.io', version: 'v1', resource: 'leases', kind: 'Lease', namespaced: true },
  // Run by the local controllers (src/local/controllers): Deployment → ReplicaSet → Pods.
  {
    group: 'apps',
    version: 'v1',
    resource: 'deployments',
    kind: 'Deployment',
    namespaced: true,
    shortNames: ['deploy'],
    categories: ['all'],
    status: true,
    scale: true,
  },
  {
    group: 'apps',
    version: 'v1',
    resource: 'replicasets',
    kind: 'ReplicaSet',
    namespaced: true,
    shortNames: ['rs'],
    categories: ['all'],
    status: true,
    scale: true,
  },
  {
    group: 'events.k8s.io',
    version: 'v1',
    resource: 'events',
    kind: 'Event',
    namespaced: true,
    shortNames: ['ev'],
  },
  {
    group: 'apiextensions.k8s.io',
    version: 'v1',
    resource: 'customresourcedefinitions',
    kind: 'CustomResourceDefinition',
    namespaced: false,
    shortNames: ['crd', 'crds'],
    categories: ['api-extensions'],
    status: true,
  },
  {
    group: 'admissionregistration.k8s.io',
    version: 'v1',
    resource: 'mutatingwebhookconfigurations',
    kind: 'MutatingWebhookConfiguration',
    namespaced: false,
    categories: ['api-extensions'],
  },
  {
    group: 'admissionregistration.k8s.io',
    version: 'v1',
    resource: 'validatingwebhookconfigurations',
    kind: 'ValidatingWebhookConfiguration',
    namespaced: false,
    categories: ['api-extensions'],
  },
  // Answered, never stored: every request is allowed here (`kubectl auth can-i`).
  {
    group: 'authorization.k8s.io',
    version: 'v1',
    resource: 'selfsubjectaccessreviews',
    kind: 'SelfSubjectAccessReview',
    namespaced: false,
  },
];

/** Preferred version of each built-in group, in discovery order. */
export const BUILTIN_GROUPS: { group: string; version: string }[] = [
  { group: 'apps', version: 'v1' },
  { group: 'coordination.k8s.io', version: 'v1' },
  { group: 'events.k8s.io', version: 'v1' },
  { group: 'apiextensions.k8s.io', version: 'v1' },
  { group: 'admissionregistration.k8s.io', version: 'v1' },
  { group: 'authorization.k8s.io', version: 'v1' },
];

/** Storage key shared by all versions of one group/resource. */
export function storageKeyOf(group: string, resource: string): string {
  return group ? `${resource}.${group}` : resource;
}

function builtinInfo(s: BuiltinSpec): ResourceInfo {
  return {
    group: s.group,
    version: s.version,
    resource: s.resource,
    singular: s.kind.toLowerCase(),
    kind: s.kind,
    listKind: `${s.kind}List`,
    namespaced: s.namespaced,
    shortNames: s.shortNames ?? [],
    categories: s.categories ?? [],
    statusSubresource: s.status ?? false,
    scaleSubresource: s.scale ?? false,
    fieldLabels: s.fieldLabels ?? [],
    printerColumns: [],
    // core/v1 and events.k8s.io/v1 events are kept apart here (the real server converts
    // between their shapes over one store): an event is seen only in the API it was written to.
    storageKey: storageKeyOf(s.group, s.resource),
  };
}

/** The fields of a CRD that decide what is served (apiextensions/v1 CustomResourceDefinitionSpec). */
export interface CrdSpec {
  group: string;
  names: {
    plural: string;
    singular?: string;
    kind: string;
    listKind?: string;
    shortNames?: string[];
    categories?: string[];
  };
  scope: 'Namespaced' | 'Cluster';
  versions: {
    name: string;
    served: boolean;
    storage: boolean;
    schema?: { openAPIV3Schema?: Schema };
    subresources?: { status?: object; scale?: object };
    additionalPrinterColumns?: PrinterColumn[];
  }[];
}

/** The resources one CRD serves, one per served version. */
export function crdResources(crdName: string, spec: CrdSpec): ResourceInfo[] {
  return spec.versions
    .filter((v) => v.served)
    .map((v) => ({
      group: spec.group,
      version: v.name,
      resource: spec.names.plural,
      singular: spec.names.singular ?? spec.names.kind.toLowerCase(),
      kind: spec.names.kind,
      listKind: spec.names.listKind ?? `${spec.names.kind}List`,
      namespaced: spec.scope === 'Namespaced',
      shortNames: spec.names.shortNames ?? [],
      categories: spec.names.categories ?? [],
      statusSubresource: v.subresources?.status !== undefined,
      // A CRD's scale subresource is not served here.
      scaleSubresource: false,
      fieldLabels: [],
      ...(v.schema?.openAPIV3Schema ? { schema: v.schema.openAPIV3Schema } : {}),
      printerColumns: v.additionalPrinterColumns ?? [],
      crd: crdName,
      storageKey: storageKeyOf(spec.group, spec.names.plural),
    }));
}

/** The table of served resources, looked up by group/version/plural. */
export class Registry {
  private readonly byGvr = new Map<string, ResourceInfo>();

  constructor() {
    for (const s of BUILTINS) this.add(builtinInfo(s));
  }

  private static key(group: string, version: string, resource: string): string {
    return `${group}/${version}/${resource}`;
  }

  /** Adds or replaces one resource. */
  add(info: ResourceInfo): void {
    this.byGvr.set(Registry.key(info.group, info.version, info.resource), info);
  }

  /** Serves exactly `infos` for CRD `crdName`, replacing what it served before. */
  setCrd(crdName: string, infos: ResourceInfo[]): void {
    this.removeCrd(crdName);
    for (const i of infos) this.add(i);
  }

  /** Stops serving everything from CRD `crdName`. */
  removeCrd(crdName: string): void {
    for (const [k, v] of this.byGvr) if (v.crd === crdName) this.byGvr.delete(k);
  }

  /** The resource at group/version/plural, if served. */
  lookup(group: string, version: string, resource: string): ResourceInfo | undefined {
    return this.byGvr.get(Registry.key(group, version, resource));
  }

  /** Every served resource. */
  all(): ResourceInfo[] {
    return [...this.byGvr.values()];
  }

  /** Served versions per group, preferred first (CRD storage version order is kept). */
  groups(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const g of BUILTIN_GROUPS) out.set(g.group, [g.version]);
    for (const r of this.byGvr.values()) {
      if (!r.group) continue;
      const list = out.get(r.group) ?? [];
      if (!list.includes(r.version)) list.push(r.version);
      out.set(r.group, list);
    }
    return out;
  }

  /** Resources of one group version. */
  inGroupVersion(group: string, version: string): ResourceInfo[] {
    return this.all().filter((r) => r.group === group && r.version === version);
  }
}
