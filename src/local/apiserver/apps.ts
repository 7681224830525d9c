/**
 * apps/v1 Deployments and ReplicaSets as the real server admits them: defaults
 * (replicas 1, the Deployment's strategy and limits, the pod template's defaults),
 * a required selector that selects the template's labels, and a selector that
 * cannot change. Running them is the local controllers' (src/local/controllers).
 */
import type { StatusCause } from './errors.js';
import { podDefaults, validatePod } from './hooks.js';
import { parseLabelSelector } from './selectors.js';
import { isObj, jsonEqual, type Obj, type ResourceInfo } from './types.js';

/** A metav1.LabelSelector object in the string form of `?labelSelector=` and Scale.status.selector. */
export function selectorString(sel: unknown): string {
  if (!isObj(sel)) return '';
  const parts: string[] = [];
  const labels = isObj(sel['matchLabels']) ? sel['matchLabels'] : {};
  for (const [k, v] of Object.entries(labels)) parts.push(`${k}=${String(v)}`);
  for (const e of Array.isArray(sel['matchExpressions']) ? (sel['matchExpressions'] as Obj[]) : []) {
    const key = String(e['key']);
    const values = Array.isArray(e['values']) ? (e['values'] as unknown[]).map(String) : [];
    if (e['operator'] === 'In') parts.push(`${key} in (${values.join(',')})`);
    else if (e['operator'] === 'NotIn') parts.push(`${key} notin (${values.join(',')})`);
    else if (e['operator'] === 'Exists') parts.push(key);
    else if (e['operator'] === 'DoesNotExist') parts.push(`!${key}`);
  }
  return parts.join(',');
}

function goMap(m: Record<string, unknown>): string {
  return `map[string]string{${Object.entries(m)
    .map(([k, v]) => `"${k}":"${String(v)}"`)
    .join(', ')}}`;
}

/** Defaults and checks a Deployment or ReplicaSet; returns the causes of a 422. */
export function prepareWorkload(info: ResourceInfo, obj: Obj, creating: boolean, old?: Obj): StatusCause[] {
  const spec = isObj(obj['spec']) ? obj['spec'] : (obj['spec'] = {});
  spec['replicas'] ??= 1;
  if (info.kind === 'Deployment') {
    const strategy = isObj(spec['strategy']) ? spec['strategy'] : (spec['strategy'] = {});
    strategy['type'] ??= 'RollingUpdate';
    if (strategy['type'] === 'RollingUpdate')
      strategy['rollingUpdate'] ??= { maxUnavailable: '25%', maxSurge: '25%' };
    spec['revisionHistoryLimit'] ??= 10;
    spec['progressDeadlineSeconds'] ??= 600;
  }
  // The controllers own status: a client's status on create is dropped, as on a real server.
  if (creating) obj['status'] = {};
  const tpl = isObj(spec['template']) ? spec['template'] : (spec['template'] = {});
  const tplSpec = isObj(tpl['spec']) ? tpl['spec'] : (tpl['spec'] = {});
  podDefaults({ spec: tplSpec });
  const causes: StatusCause[] = validatePod({ spec: tplSpec }).map((c) => ({
    ...c,
    field: `spec.template.${c.field}`,
  }));
  const replicas = spec['replicas'];
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    causes.push({
      reason: 'FieldValueInvalid',
      message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
      field: 'spec.replicas',
    });
  }
  const selector = selectorString(spec['selector']);
  const labels = (
    isObj(tpl['metadata']) && isObj(tpl['metadata']['labels']) ? tpl['metadata']['labels'] : {}
  ) as Record<string, string>;
  if (!isObj(spec['selector'])) {
    causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.selector' });
  } else if (!selector) {
    causes.push({
      reason: 'FieldValueInvalid',
      message: `Invalid value: ${JSON.stringify(spec['selector'])}: empty selector is invalid for ${info.kind.toLowerCase()}`,
      field: 'spec.selector',
    });
  } else if (!parseLabelSelector(selector).matches(labels)) {
    causes.push({
      reason: 'FieldValueInvalid',
      message: `Invalid value: ${goMap(labels)}: \`selector\` does not match template \`labels\``,
      field: 'spec.template.metadata.labels',
    });
  }
  const oldSpec = old && isObj(old['spec']) ? old['spec'] : undefined;
  if (oldSpec && !jsonEqual(oldSpec['selector'], spec['selector'])) {
    causes.push({
      reason: 'FieldValueInvalid',
      message: `Invalid value: ${JSON.stringify(spec['selector'])}: field is immutable`,
      field: 'spec.selector',
    });
  }
  return causes;
}
