/**
 * What `kubectl fdckpt` does against the API server: the custom resource a user would
 * apply (crds/, deploy/samples/), created with client-node; then, unless --no-wait, the
 * object read until the controller sets a terminal phase — Checkpoint Ready or Failed,
 * Migration Succeeded or Failed — or --timeout passes; then one line of result and, for
 * a refusal, every reason the status lists.
 */
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  API_VERSION,
  CHECKPOINT,
  CONDITIONS,
  GROUP,
  MIGRATION,
  MIGRATION_CONDITIONS,
  VERSION,
  findCondition,
  holderPlace,
  type Checkpoint,
  type KindInfo,
  type Leak,
  type Migration,
  type ObjectMeta,
} from '../../api/index.js';
import { EXIT } from '../command.js';
import type { PluginRequest } from './plugin.js';

/** How often the object is read while waiting: a person waits on it, the API server barely notices. */
const POLL_MS = 500;
const PROGRAM_NAME = 'kubectl fdckpt';

/** Checkpoint reasons that mean "this pod cannot be checkpointed as it is" (exit 3). */
const NOT_CHECKPOINTABLE = new Set(['LeaksFound', 'UnsupportedFds']);

/** The kubeconfig as kubectl would read it, and the namespace it would use. */
export function kubeContext(req: PluginRequest): { kc: KubeConfig; namespace: string } {
  const kc = new KubeConfig();
  if (req.kubeconfig) kc.loadFromFile(req.kubeconfig);
  else kc.loadFromDefault();
  if (req.context) {
    if (!kc.getContextObject(req.context))
      throw new Error(`no context ${JSON.stringify(req.context)} in the kubeconfig`);
    kc.setCurrentContext(req.context);
  }
  const namespace = req.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  return { kc, namespace };
}

/** The object `req` asks for, as a manifest. */
export function manifestOf(req: PluginRequest, namespace: string): Checkpoint | Migration {
  // generateName (not in api/'s ObjectMeta, which is what fdckpt itself reads): kubectl create's way.
  const metadata: ObjectMeta & { generateName?: string } = {
    namespace,
    ...(req.name
      ? { name: req.name }
      : { generateName: `${req.pod}-${req.action === 'preflight' ? 'preflight-' : ''}` }),
  };
  const containers = req.containers.length > 0 ? { containers: req.containers } : {};
  const leakPolicy = req.leakPolicy ? { leakPolicy: req.leakPolicy } : {};
  if (req.action === 'migrate') {
    return {
      apiVersion: API_VERSION,
      kind: MIGRATION.kind,
      metadata,
      spec: { podName: req.pod, ...(req.targetNode ? { targetNode: req.targetNode } : {}), ...leakPolicy },
    };
  }
  // A preflight is a dry run: it always ends Ready, and the controller's Checkpointable
  // condition is the verdict, under the leak policy a real checkpoint would use.
  if (req.action === 'preflight') {
    return {
      apiVersion: API_VERSION,
      kind: CHECKPOINT.kind,
      metadata,
      spec: { podName: req.pod, ...containers, dryRun: true, ...leakPolicy },
    };
  }
  return {
    apiVersion: API_VERSION,
    kind: CHECKPOINT.kind,
    metadata,
    spec: { podName: req.pod, ...containers, ...leakPolicy },
  };
}

type Resource = Checkpoint | Migration;

function kindOf(req: PluginRequest): KindInfo {
  return req.action === 'migrate' ? MIGRATION : CHECKPOINT;
}

function terminal(req: PluginRequest, obj: Resource): boolean {
  const phase = obj.status?.phase;
  return req.action === 'migrate'
    ? phase === 'Succeeded' || phase === 'Failed'
    : phase === 'Ready' || phase === 'Failed';
}

/** Creates the object, waits unless told not to, prints the outcome; resolves to the exit code. */
export async function runRequest(req: PluginRequest): Promise<number> {
  const { kc, namespace } = kubeContext(req);
  const api = kc.makeApiClient(CustomObjectsApi);
  const kind = kindOf(req);
  const where = { group: GROUP, version: VERSION, namespace, plural: kind.plural };
  const created = (await api.createNamespacedCustomObject({
    ...where,
    body: manifestOf(req, namespace),
  })) as Resource;
  const name = created.metadata.name ?? '';
  const ref = `${kind.singular}.${GROUP}/${name}`;
  process.stdout.write(`${ref} created\n`);
  if (!req.wait) return EXIT.ok;
  const deadline = Date.now() + req.timeoutMs;
  let obj = created;
  while (!terminal(req, obj)) {
    if (Date.now() >= deadline) {
      const ready = findCondition(obj.status?.conditions, 'Ready');
      process.stderr.write(
        `${PROGRAM_NAME}: timed out waiting for ${ref} (phase ${obj.status?.phase ?? 'none'}` +
          `${ready ? `, ${ready.reason}: ${ready.message}` : ''}); it is still there, see kubectl describe ${kind.singular} ${name}\n`,
      );
      return EXIT.failed;
    }
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
    try {
      obj = (await api.getNamespacedCustomObject({ ...where, name })) as Resource;
    } catch (err) {
      if ((err as { code?: number }).code === 404) throw new Error(`${ref} was deleted while waiting`);
      throw err;
    }
  }
  return req.action === 'migrate'
    ? reportMigration(ref, obj as Migration)
    : reportCheckpoint(req, ref, obj as Checkpoint);
}

function holder(h: Leak['inside']): string {
  return `pid ${h.pid}${h.fd === undefined ? '' : ` fd ${h.fd}`} (${h.comm}, ${holderPlace(h)})`;
}

/** Every reason the status lists (bounded in the status: the true total is said). */
function printReasons(status: Checkpoint['status']): void {
  const leaks = status?.leaks;
  for (const l of leaks?.items ?? [])
    process.stdout.write(
      `leak: ${l.type} ${l.object}: inside ${holder(l.inside)} <-> outside ${holder(l.outside)}\n`,
    );
  if (leaks && leaks.total > leaks.items.length)
    process.stdout.write(`... and ${leaks.total - leaks.items.length} more leak(s)\n`);
  const problems = status?.problems;
  for (const p of problems?.items ?? []) process.stdout.write(`refused: ${p.message}\n`);
  if (problems && problems.total > problems.items.length)
    process.stdout.write(`... and ${problems.total - problems.items.length} more refused fd(s)\n`);
}

function reportCheckpoint(req: PluginRequest, ref: string, ckpt: Checkpoint): number {
  const status = ckpt.status;
  const ready = findCondition(status?.conditions, 'Ready');
  const leaks = status?.leaks?.total ?? 0;
  const problems = status?.problems?.total ?? 0;
  if (status?.phase === 'Failed') {
    process.stdout.write(`${ref} Failed (${ready?.reason ?? 'unknown'}): ${ready?.message ?? ''}\n`);
    printReasons(status);
    return NOT_CHECKPOINTABLE.has(ready?.reason ?? '') ? EXIT.notCheckpointable : EXIT.failed;
  }
  if (req.action === 'preflight') {
    // A dry run is Ready once it has looked; the verdict is the controller's Checkpointable.
    const fds = `${status?.totalFds ?? 0} fds in ${status?.totalProcesses ?? 0} processes`;
    const verdict = findCondition(status?.conditions, CONDITIONS.Checkpointable);
    if (verdict?.status === 'True') {
      process.stdout.write(`${ref} checkpointable (${verdict.reason}): ${fds}; ${verdict.message}\n`);
      printReasons(status);
      return EXIT.ok;
    }
    process.stdout.write(
      `${ref} not checkpointable (${verdict?.reason ?? 'no verdict'}): ${leaks} leak(s), ${problems} refused fd(s) (${fds})\n`,
    );
    printReasons(status);
    return EXIT.notCheckpointable;
  }
  process.stdout.write(`${ref} Ready (${ready?.reason ?? ''}): ${ready?.message ?? ''}\n`);
  // ReadyWithLeaks: the leak policy let them through; they are still worth seeing.
  printReasons(status);
  return EXIT.ok;
}

function reportMigration(ref: string, mig: Migration): number {
  const ready = findCondition(mig.status?.conditions, MIGRATION_CONDITIONS.Ready);
  if (mig.status?.phase === 'Succeeded') {
    const downtime = mig.status.timings?.downtimeMs;
    process.stdout.write(
      `${ref} Succeeded: ${ready?.message ?? ''}${downtime === undefined ? '' : ` (downtime ${downtime} ms)`}\n`,
    );
    return EXIT.ok;
  }
  const checkpointed = findCondition(mig.status?.conditions, MIGRATION_CONDITIONS.Checkpointed);
  process.stdout.write(`${ref} Failed (${ready?.reason ?? 'unknown'}): ${ready?.message ?? ''}\n`);
  if (checkpointed?.status === 'False') {
    process.stdout.write(
      `checkpoint ${mig.status?.checkpointName ?? ''}: ${checkpointed.reason}: ${checkpointed.message}\n`,
    );
    if (NOT_CHECKPOINTABLE.has(checkpointed.reason)) return EXIT.notCheckpointable;
  }
  return EXIT.failed;
}
