/**
 * Spec validation done by the controller. The CRD schema and its CEL rules
 * reject most bad specs at admission; this repeats them because a cluster may
 * run without CEL (or the object was stored before a schema change), and a bad
 * spec must become an InvalidSpec condition, never a crash or a retry storm.
 * Each message names the field and says why.
 */
import { isFileType } from '../shared/file-types.js';
import { MAX_GLOB_LENGTH, MAX_POLICY_RULES } from '../shared/policy-limits.js';
import type { CheckpointSpec, RestoreSpec } from './types.js';
import { AFTER_CAPTURE, LEAK_POLICIES, POLICY_ACTIONS, RESTORE_FDS } from './types.js';

/** DNS-1123 subdomain, the rule for pod names. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** DNS-1123 label, the rule for container names. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function checkName(errors: string[], field: string, value: unknown, label = false): void {
  if (typeof value !== 'string' || value === '') {
    errors.push(`${field}: required, a non-empty string`);
    return;
  }
  const max = label ? 63 : 253;
  if (value.length > max || !(label ? DNS_LABEL : DNS_SUBDOMAIN).test(value)) {
    errors.push(
      `${field}: ${JSON.stringify(value)} is not a valid DNS-1123 ${label ? 'label' : 'subdomain'}`,
    );
  }
}

function checkEnum(errors: string[], field: string, value: unknown, allowed: readonly string[]): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || !allowed.includes(value)) {
    errors.push(`${field}: ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
  }
}

/** Problems with a Checkpoint spec; empty when it is valid. */
export function validateCheckpointSpec(spec: CheckpointSpec | undefined): string[] {
  const errors: string[] = [];
  if (!spec || typeof spec !== 'object') return ['spec: required'];
  checkName(errors, 'spec.podName', spec.podName);
  if (spec.containers !== undefined) {
    if (!Array.isArray(spec.containers)) errors.push('spec.containers: must be a list of container names');
    else {
      spec.containers.forEach((c, i) => checkName(errors, `spec.containers[${i}]`, c, true));
      if (new Set(spec.containers).size !== spec.containers.length)
        errors.push('spec.containers: names must be unique');
    }
  }
  checkEnum(errors, 'spec.leakPolicy', spec.leakPolicy, LEAK_POLICIES);
  checkEnum(errors, 'spec.afterCapture', spec.afterCapture, AFTER_CAPTURE);
  (spec.ignore?.types ?? []).forEach((t, i) => {
    if (!isFileType(t)) errors.push(`spec.ignore.types[${i}]: ${JSON.stringify(t)} is not a known fd type`);
  });
  (spec.ignore?.paths ?? []).forEach((p, i) => {
    if (typeof p !== 'string' || !p.startsWith('/'))
      errors.push(`spec.ignore.paths[${i}]: must be an absolute path`);
  });
  const ttl = spec.ttlSecondsAfterFinished;
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 0)) {
    errors.push(`spec.ttlSecondsAfterFinished: ${JSON.stringify(ttl)} must be a non-negative integer`);
  }
  if (spec.dryRun === true && spec.afterCapture === 'Stop') {
    errors.push(
      'spec.afterCapture: Stop is not allowed with dryRun (a dry run must leave the pod as it was)',
    );
  }
  return errors;
}

/** Problems with a Restore spec; empty when it is valid. */
export function validateRestoreSpec(spec: RestoreSpec | undefined): string[] {
  const errors: string[] = [];
  if (!spec || typeof spec !== 'object') return ['spec: required'];
  checkName(errors, 'spec.checkpointName', spec.checkpointName);
  const target = spec.target;
  if (!target || typeof target !== 'object') errors.push('spec.target: required');
  else {
    const hasPod = target.podName !== undefined;
    const hasNew = target.newPod !== undefined;
    if (hasPod === hasNew) errors.push('spec.target: exactly one of podName and newPod must be set');
    if (hasPod) checkName(errors, 'spec.target.podName', target.podName);
    if (target.newPod?.name !== undefined) checkName(errors, 'spec.target.newPod.name', target.newPod.name);
    if (target.newPod?.nodeName !== undefined)
      checkName(errors, 'spec.target.newPod.nodeName', target.newPod.nodeName);
  }
  checkPolicyBounds(errors, spec.policy?.rules);
  (spec.policy?.rules ?? []).forEach((rule, i) => checkRule(errors, `spec.policy.rules[${i}]`, rule));
  checkEnum(errors, 'spec.fds', spec.fds, RESTORE_FDS);
  if (spec.listenFds !== undefined && typeof spec.listenFds !== 'boolean')
    errors.push('spec.listenFds: must be true or false');
  return errors;
}

/**
 * The bounds of a policy (as the CRDs have them, for an API server that did not
 * apply the schema): each rule's glob is matched against every fd of an image.
 */
export function checkPolicyBounds(errors: string[], rules: readonly { path?: unknown }[] | undefined): void {
  if (rules === undefined) return;
  if (rules.length > MAX_POLICY_RULES)
    errors.push(`spec.policy.rules: ${rules.length} rules, at most ${MAX_POLICY_RULES}`);
  rules.forEach((rule, i) => {
    if (typeof rule.path === 'string' && rule.path.length > MAX_GLOB_LENGTH)
      errors.push(
        `spec.policy.rules[${i}].path: a glob of ${rule.path.length} characters, at most ${MAX_GLOB_LENGTH}`,
      );
  });
}

function checkRule(
  errors: string[],
  at: string,
  rule: RestoreSpec['policy'] extends infer P
    ? NonNullable<P> extends { rules?: (infer R)[] }
      ? R
      : never
    : never,
): void {
  checkEnum(errors, `${at}.action`, rule.action, POLICY_ACTIONS);
  if (rule.fd !== undefined && (!Number.isInteger(rule.fd) || rule.fd < 0))
    errors.push(`${at}.fd: must be an integer >= 0`);
  if (rule.type !== undefined && !isFileType(rule.type))
    errors.push(`${at}.type: ${JSON.stringify(rule.type)} is not a known fd type`);
  if (rule.path !== undefined && (typeof rule.path !== 'string' || rule.path === ''))
    errors.push(`${at}.path: must be a non-empty glob`);
  const remap = rule.action === 'remap';
  for (const key of ['from', 'to'] as const) {
    const v = rule[key];
    if (remap && (typeof v !== 'string' || !v.startsWith('/')))
      errors.push(`${at}.${key}: remap needs an absolute path prefix`);
    if (!remap && v !== undefined) errors.push(`${at}.${key}: belongs to action remap only`);
  }
}
