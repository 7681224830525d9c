/**
 * `fdckpt controller`: the operator's controller (a Deployment in a cluster).
 * Runs until SIGINT/SIGTERM, then shuts down gracefully (in-flight reconciles
 * finish, the lease is released).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { intFlag, noPositionals, single, UsageError, type Command, type ParsedArgs } from '../command.js';
import { controller as spec } from '../specs.js';
import { loadKubeConfig, makeClients } from '../../kube/client.js';
import { ownImage } from '../../controller/own-image.js';
import { startController } from '../../controller/manager.js';
import type { ControllerOptions } from '../../controller/manager.js';
import type { DrainRetryOptions } from '../../controller/drain/retry.js';
import type { ClientAuth } from '../../controller/webhook/server.js';
import { DRAIN_RETRY_DEFAULTS } from '../../controller/drain/retry.js';
import { jsonLogger } from '../../kube/log.js';
import { logLevelFlag } from './log-level.js';
import { untilSignal } from './signals.js';

export const command: Command = {
  spec,
  async run(parsed: ParsedArgs): Promise<number> {
    noPositionals(parsed, spec);
    const port = single(parsed, 'port');
    // An empty FDCKPT_IMAGE (a manifest that blanks it) means unset.
    const given = single(parsed, 'launcher-image') ?? (process.env['FDCKPT_IMAGE'] || undefined);
    const hostPath = single(parsed, 'launcher-host-path');
    // In a cluster, neither: the launcher image is this pod's own (src/controller/own-image.ts).
    const podName = process.env['POD_NAME'];
    const podNamespace = process.env['POD_NAMESPACE'];
    if (!given && !hostPath && !(podName && podNamespace))
      throw new UsageError(
        '--launcher-image (or FDCKPT_IMAGE), --launcher-host-path, or POD_NAME and POD_NAMESPACE (the pod whose image to use) is required',
      );
    const log = jsonLogger('controller', { level: logLevelFlag(parsed) });
    const identity = process.env['POD_NAME'] ?? `${hostname()}-${process.pid}`;
    const leaseNamespace =
      single(parsed, 'lease-namespace') ?? process.env['POD_NAMESPACE'] ?? 'fdckpt-system';
    // Flags are checked before anything connects: a typo is a usage error, not a crash loop.
    const migration = migrationFlags(parsed, leaseNamespace);
    const kc = loadKubeConfig(single(parsed, 'kubeconfig'));
    const image =
      given ??
      (hostPath
        ? undefined
        : await ownImage(makeClients(kc).core, { name: podName!, namespace: podNamespace! }));
    // What this replica runs with, for telling replicas' settings apart (--log-level debug).
    log.debug('configuration', {
      identity,
      leaseNamespace,
      leaderElection: !parsed.booleans.has('no-leader-elect'),
      launcherImage: image,
      launcherHostPath: hostPath,
      webhook: migration.webhook?.port,
      webhookClientNames: migration.webhook?.clientAuth?.allowedNames,
      webhookClientAuth: migration.webhook ? !!migration.webhook.clientAuth : undefined,
      drain: migration.migrations,
    });
    let lost = false;
    const running = await startController({
      kc,
      log,
      port: port === undefined ? 8080 : intFlag(port, 'port'),
      launcher: { image: image ?? '', ...(hostPath ? { hostPath } : {}) },
      ...(parsed.booleans.has('no-leader-elect')
        ? {}
        : { lease: { namespace: leaseNamespace, name: 'fdckpt-controller', identity } }),
      onLostLeadership: () => {
        lost = true;
        process.kill(process.pid, 'SIGTERM');
      },
      ...migration,
    });
    log.info(`serving health and metrics on :${running.port}`);
    await untilSignal();
    await running.stop();
    // Exiting non-zero after losing the lease makes the kubelet restart us as a fresh candidate.
    return lost ? 1 : 0;
  },
};

/**
 * The pod webhook (on with --webhook-port; its Service, Secret and configuration
 * are deploy/webhook.yaml's names), the drain concurrency limit and the drain
 * retries (defaults in src/controller/drain/retry.ts).
 */
function migrationFlags(
  parsed: ParsedArgs,
  namespace: string,
): Pick<ControllerOptions, 'webhook' | 'migrations'> {
  const webhookPort = single(parsed, 'webhook-port');
  const maxDrain = single(parsed, 'max-drain-migrations');
  if (single(parsed, 'webhook-client-ca') && !webhookPort)
    throw new UsageError('--webhook-client-ca needs --webhook-port');
  const clientAuth = webhookClientAuth(parsed);
  return {
    migrations: {
      enabled: true,
      ...(maxDrain ? { maxConcurrentDrain: intFlag(maxDrain, 'max-drain-migrations') } : {}),
      drainRetry: drainRetryFlags(parsed),
    },
    ...(webhookPort
      ? {
          webhook: {
            port: intFlag(webhookPort, 'webhook-port'),
            namespace,
            secretName: 'fdckpt-webhook-tls',
            serviceName: 'fdckpt-webhook',
            configName: 'fdckpt-pods',
            ...(clientAuth ? { clientAuth } : {}),
          },
        }
      : {}),
  };
}

/**
 * --webhook-client-ca FILE (read once at start: a new CA needs a restart) and
 * --webhook-client-names CN,...; without the CA the webhook serves any caller.
 */
function webhookClientAuth(parsed: ParsedArgs): ClientAuth | undefined {
  const file = single(parsed, 'webhook-client-ca');
  const names = single(parsed, 'webhook-client-names');
  if (!file) {
    if (names) throw new UsageError('--webhook-client-names needs --webhook-client-ca');
    return undefined;
  }
  let ca: string;
  try {
    ca = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--webhook-client-ca ${file}: ${(err as Error).message}`);
  }
  if (!ca.includes('-----BEGIN CERTIFICATE-----'))
    throw new UsageError(`--webhook-client-ca ${file}: no PEM certificate in it`);
  const allowedNames = (names ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  return { ca, ...(allowedNames.length ? { allowedNames } : {}) };
}

/** --drain-retries N, --drain-backoff-seconds S (the first wait, doubled each time), --drain-max-backoff-seconds S. */
function drainRetryFlags(parsed: ParsedArgs): DrainRetryOptions {
  const retries = single(parsed, 'drain-retries');
  const backoff = single(parsed, 'drain-backoff-seconds');
  const maxBackoff = single(parsed, 'drain-max-backoff-seconds');
  const options: DrainRetryOptions = {
    ...(retries ? { retries: intFlag(retries, 'drain-retries') } : {}),
    ...(backoff ? { backoffMs: intFlag(backoff, 'drain-backoff-seconds') * 1000 } : {}),
    ...(maxBackoff ? { maxBackoffMs: intFlag(maxBackoff, 'drain-max-backoff-seconds') * 1000 } : {}),
  };
  const first = options.backoffMs ?? DRAIN_RETRY_DEFAULTS.backoffMs;
  const most = options.maxBackoffMs ?? DRAIN_RETRY_DEFAULTS.maxBackoffMs;
  if (most < first)
    throw new UsageError(
      `--drain-max-backoff-seconds (${most / 1000}) must not be less than --drain-backoff-seconds (${first / 1000})`,
    );
  return options;
}
