/**
 * `fdckpt local`: runs the local control plane (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler and process kubelets) until SIGINT or SIGTERM,
 * for trying fdckpt and for tests. Prints `ready` once it serves.
 */
import { resolve } from 'node:path';
import { intFlag, noPositionals, single, UsageError, type Command, type ParsedArgs } from '../command.js';
import { local as spec } from '../specs.js';
import {
  startControlPlane,
  type Component,
  type ControlPlaneInfo,
  type ControlPlaneOptions,
} from '../../local/controlplane.js';
import { jsonLogger, type LogLevel, type Logger } from '../../kube/log.js';
import { logLevelFlag } from './log-level.js';

const USAGE = spec.usage;

/** Where the operator's local starter lives once the controller and agents exist. */
const OPERATOR_MODULE = '../local-operator.js';

/**
 * The operator's starter (the controller and one agent per node), loaded only if this
 * build has it, so that the control plane runs with or without the operator.
 */
async function loadOperator(level: LogLevel): Promise<ControlPlaneOptions['startOperator']> {
  let mod: { startLocalOperator?: unknown };
  try {
    mod = (await import(OPERATOR_MODULE)) as { startLocalOperator?: unknown };
  } catch (e) {
    // Node says ERR_MODULE_NOT_FOUND; jest's resolver "Could not locate module".
    const code = (e as { code?: string }).code;
    const message = e instanceof Error ? e.message : String(e);
    const missing =
      code === 'ERR_MODULE_NOT_FOUND' || /Could not locate module|Cannot find module/.test(message);
    if (missing && message.includes('local-operator')) return undefined;
    throw e;
  }
  if (typeof mod.startLocalOperator !== 'function') {
    throw new Error(`${OPERATOR_MODULE} does not export startLocalOperator(info)`);
  }
  const start = mod.startLocalOperator as (
    info: ControlPlaneInfo,
    options: { log: (component: string) => Logger },
  ) => Promise<Component>;
  // The controller's and agents' JSON lines at the level asked for (--log-level).
  return (info) => start(info, { log: (component) => jsonLogger(component, { level }) });
}

/** The `local` subcommand. */
export const command: Command = {
  spec,
  async run(parsed: ParsedArgs): Promise<number> {
    noPositionals(parsed, spec);
    const kubeconfig = single(parsed, 'kubeconfig');
    if (!kubeconfig) throw new UsageError(`--kubeconfig FILE is required; usage: fdckpt ${USAGE}`);
    const nodesFlag = single(parsed, 'nodes');
    const dataDir = single(parsed, 'data-dir');
    const verbose = parsed.booleans.has('verbose');
    const apiOnly = parsed.booleans.has('api-only');
    const level = logLevelFlag(parsed);
    const startOperator = apiOnly ? undefined : await loadOperator(level);
    const cp = await startControlPlane({
      kubeconfigPath: resolve(kubeconfig),
      nodes: nodesFlag === undefined ? 1 : intFlag(nodesFlag, 'nodes'),
      apiOnly,
      ...(startOperator ? { startOperator } : {}),
      ...(dataDir ? { dataDir: resolve(dataDir) } : {}),
      ...(verbose ? { log: (l: string) => process.stderr.write(`${l}\n`) } : {}),
    });
    if (!apiOnly && !startOperator) {
      process.stderr.write(
        'fdckpt local: this build has no operator (src/cli/local-operator.ts): control plane only\n',
      );
    }
    process.stderr.write(
      `fdckpt local: API ${cp.url}, kubeconfig ${cp.kubeconfigPath}, data ${cp.dataDir}, nodes ${cp.nodes.map((n) => n.name).join(', ') || 'none'}\n`,
    );
    process.stdout.write('ready\n');
    await new Promise<void>((done) => {
      const finish = (): void => {
        process.off('SIGINT', finish);
        process.off('SIGTERM', finish);
        done();
      };
      process.on('SIGINT', finish);
      process.on('SIGTERM', finish);
    });
    await cp.stop();
    return 0;
  },
};
