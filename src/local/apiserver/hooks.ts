/**
 * Kind-specific behaviour the real server has for built-ins: pod defaults and QoS class,
 * namespace phase, service cluster IPs, and CRDs — checked, marked Established and
 * served at once.
 */
import { invalid, type StatusCause } from './errors.js';
import { prepareWorkload } from './apps.js';
import { checkJsonPath } from './jsonpath.js';
import { crdResources, type CrdSpec, type Registry } from './registry.js';
import { podQosClass } from '../qos.js';
import { isObj, jsonEqual, metaOf, type Obj, type ResourceInfo } from './types.js';

/** The defaults the real server gives a pod spec (also a workload's pod template). */
export function podDefaults(pod: Obj): void {
  const spec = isObj(pod['spec']) ? pod['spec'] : (pod['spec'] = {});
  spec['restartPolicy'] ??= 'Always';
  spec['terminationGracePeriodSeconds'] ??= 30;
  spec['dnsPolicy'] ??= 'ClusterFirst';
  spec['schedulerName'] ??= 'default-scheduler';
  spec['enableServiceLinks'] ??= true;
  for (const c of Array.isArray(spec['containers']) ? (spec['containers'] as Obj[]) : []) {
    c['terminationMessagePath'] ??= '/dev/termination-log';
    c['terminationMessagePolicy'] ??= 'File';
    c['imagePullPolicy'] ??= 'IfNotPresent';
  }
}

/** Checks a pod (or a pod template: causes are named from `spec.`). */
export function validatePod(pod: Obj): StatusCause[] {
  const spec = isObj(pod['spec']) ? pod['spec'] : {};
  const containers = spec['containers'];
  if (!Array.isArray(containers) || containers.length === 0) {
    return [{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.containers' }];
  }
  const causes: StatusCause[] = [];
  containers.forEach((c, i) => {
    if (!isObj(c) || typeof c['name'] !== 'string' || !c['name']) {
      causes.push({
        reason: 'FieldValueRequired',
        message: 'Required value',
        field: `spec.containers[${i}].name`,
      });
    }
    if (isObj(c) && typeof c['image'] !== 'string') {
      causes.push({
        reason: 'FieldValueRequired',
        message: 'Required value',
        field: `spec.containers[${i}].image`,
      });
    }
  });
  return causes;
}

function validateCrd(crd: Obj): StatusCause[] {
  const name = metaOf(crd).name ?? '';
  const spec = crd['spec'];
  const causes: StatusCause[] = [];
  const req = (field: string): void =>
    void causes.push({ reason: 'FieldValueRequired', message: 'Required value', field });
  if (!isObj(spec)) return [{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec' }];
  const names = isObj(spec['names']) ? spec['names'] : {};
  if (typeof spec['group'] !== 'string' || !spec['group']) req('spec.group');
  if (typeof names['plural'] !== 'string' || !names['plural']) req('spec.names.plural');
  if (typeof names['kind'] !== 'string' || !names['kind']) req('spec.names.kind');
  if (spec['scope'] !== 'Namespaced' && spec['scope'] !== 'Cluster') {
    causes.push({
      reason: 'FieldValueNotSupported',
      message: `Unsupported value: ${JSON.stringify(spec['scope'])}: supported values: "Cluster", "Namespaced"`,
      field: 'spec.scope',
    });
  }
  if (typeof names['plural'] === 'string' && name !== `${names['plural']}.${String(spec['group'])}`) {
    causes.push({
      reason: 'FieldValueInvalid',
      message: `Invalid value: ${JSON.stringify(name)}: must be spec.names.plural+"."+spec.group`,
      field: 'metadata.name',
    });
  }
  const versions = Array.isArray(spec['versions']) ? (spec['versions'] as Obj[]) : [];
  if (versions.length === 0) req('spec.versions');
  if (versions.length && versions.filter((v) => v['storage'] === true).length !== 1) {
    causes.push({
      reason: 'FieldValueInvalid',
      message: `Invalid value: ${JSON.stringify(spec['versions'])}: must have exactly one version marked as storage version`,
      field: 'spec.versions',
    });
  }
  versions.forEach((v, i) => {
    const cols = Array.isArray(v['additionalPrinterColumns']) ? (v['additionalPrinterColumns'] as Obj[]) : [];
    cols.forEach((c, j) => {
      try {
        checkJsonPath(String(c['jsonPath']));
      } catch {
        causes.push({
          reason: 'FieldValueInvalid',
          message: `Invalid value: ${JSON.stringify(c['jsonPath'])}: unsupported JSONPath`,
          field: `spec.versions[${i}].additionalPrinterColumns[${j}].jsonPath`,
        });
      }
    });
  });
  return causes;
}

/**
 * A pod's spec is immutable but for a few fields, as the real server enforces it:
 * container images, activeDeadlineSeconds, added tolerations, terminationGracePeriodSeconds.
 */
function podUpdateCauses(pod: Obj, old: Obj): StatusCause[] {
  const mask = (p: Obj): Obj => {
    const spec = structuredClone(isObj(p['spec']) ? p['spec'] : {});
    for (const list of ['containers', 'initContainers']) {
      for (const c of Array.isArray(spec[list]) ? (spec[list] as unknown[]) : [])
        if (isObj(c)) delete c['image'];
    }
    delete spec['activeDeadlineSeconds'];
    delete spec['tolerations'];
    delete spec['terminationGracePeriodSeconds'];
    return spec;
  };
  if (jsonEqual(mask(pod), mask(old))) return [];
  return [
    {
      reason: 'FieldValueForbidden',
      message:
        'Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
      field: 'spec',
    },
  ];
}

let nextServiceIp = 1;

/** Applies server-side defaults and checks to a built-in object about to be created or updated. */
export function prepareBuiltin(
  info: ResourceInfo,
  obj: Obj,
  creating: boolean,
  registry: Registry,
  old?: Obj,
): void {
  const target = { group: info.group, kind: info.kind, name: metaOf(obj).name ?? '' };
  let causes: StatusCause[] = [];
  switch (info.storageKey) {
    case 'pods':
      podDefaults(obj);
      causes = validatePod(obj);
      if (old && !causes.length) causes = podUpdateCauses(obj, old);
      if (creating) obj['status'] = { phase: 'Pending', qosClass: podQosClass(obj) };
      break;
    case 'deployments.apps':
    case 'replicasets.apps':
      causes = prepareWorkload(info, obj, creating, old);
      break;
    case 'namespaces':
      obj['spec'] ??= { finalizers: ['kubernetes'] };
      if (creating) obj['status'] = { phase: 'Active' };
      break;
    case 'services': {
      const spec = isObj(obj['spec']) ? obj['spec'] : (obj['spec'] = {});
      spec['type'] ??= 'ClusterIP';
      if (creating && spec['clusterIP'] === undefined) {
        spec['clusterIP'] = `10.96.${Math.floor(nextServiceIp / 250)}.${(nextServiceIp % 250) + 1}`;
        nextServiceIp++;
      }
      break;
    }
    case 'customresourcedefinitions.apiextensions.k8s.io':
      causes = validateCrd(obj);
      if (!causes.length) establishCrd(obj, registry);
      break;
  }
  if (causes.length) throw invalid(target, causes);
}

/** Marks a CRD accepted and established, and serves its resource. */
function establishCrd(crd: Obj, registry: Registry): void {
  const spec = crd['spec'] as CrdSpec;
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const storage = spec.versions.find((v) => v.storage)?.name ?? '';
  const cond = (type: string, reason: string, message: string): Obj => ({
    type,
    status: 'True',
    lastTransitionTime: now,
    reason,
    message,
  });
  crd['status'] = {
    acceptedNames: {
      ...spec.names,
      singular: spec.names.singular ?? spec.names.kind.toLowerCase(),
      listKind: spec.names.listKind ?? `${spec.names.kind}List`,
    },
    conditions: [
      cond('NamesAccepted', 'NoConflicts', 'no conflicts found'),
      cond('Established', 'InitialNamesAccepted', 'the initial names have been accepted'),
    ],
    storedVersions: [storage],
  };
  const name = metaOf(crd).name!;
  registry.setCrd(name, crdResources(name, spec));
}
