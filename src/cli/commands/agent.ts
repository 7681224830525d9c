/**
 * `fdckpt agent`: the node agent (a DaemonSet in a cluster): captures and
 * replays the work the controller assigns to this node.
 */
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { intFlag, noPositionals, single, UsageError, type Command, type ParsedArgs } from '../command.js';
import { agent as spec } from '../specs.js';
import { EngineAdapter } from '../../agent/daemon/engine-adapter.js';
import { startAgent } from '../../agent/daemon/daemon.js';
import type { TransferOptions } from '../../agent/migration/wiring.js';
import { loadKubeConfig } from '../../kube/client.js';
import { jsonLogger } from '../../kube/log.js';
import { logLevelFlag } from './log-level.js';
import { untilSignal } from './signals.js';

export const command: Command = {
  spec,
  async run(parsed: ParsedArgs): Promise<number> {
    noPositionals(parsed, spec);
    const level = logLevelFlag(parsed);
    const nodeName = single(parsed, 'node') ?? process.env['NODE_NAME'] ?? hostname();
    const dataDir = resolve(
      single(parsed, 'data-dir') ?? process.env['FDCKPT_DATA_DIR'] ?? '/var/lib/fdckpt',
    );
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const port = single(parsed, 'port');
    const log = jsonLogger('agent', { level });
    const transfer = transferOptions(parsed);
    log.debug('configuration', {
      nodeName,
      dataDir,
      transferPort: transfer?.port ?? 'off',
      transferUrl: transfer?.advertiseUrl,
    });
    const running = await startAgent({
      kc: loadKubeConfig(single(parsed, 'kubeconfig')),
      nodeName,
      dataDir,
      engine: new EngineAdapter({ dataDir }),
      log,
      port: port === undefined ? 8081 : intFlag(port, 'port'),
      transfer,
    });
    log.info(`agent for node ${nodeName}, data in ${dataDir}, health and metrics on :${running.port}`);
    await untilSignal();
    await running.stop();
    return 0;
  },
};

/** Image transfer for migrations: on unless --transfer-port is 'off'. */
function transferOptions(parsed: ParsedArgs): TransferOptions | undefined {
  const port = single(parsed, 'transfer-port') ?? '8082';
  if (port === 'off') return undefined;
  const url = single(parsed, 'transfer-url') ?? process.env['FDCKPT_TRANSFER_URL'];
  const shared = single(parsed, 'shared-images');
  const attempts = single(parsed, 'transfer-attempts');
  const backoff = single(parsed, 'transfer-backoff-ms');
  const tokenFile = single(parsed, 'transfer-token-file');
  if (attempts !== undefined && intFlag(attempts, 'transfer-attempts') < 1) {
    throw new UsageError('--transfer-attempts must be at least 1');
  }
  return {
    port: intFlag(port, 'transfer-port'),
    // Development only: plain HTTP both ways (see docs/migration.md).
    ...(parsed.booleans.has('transfer-insecure') ? { insecure: true } : {}),
    retry: {
      ...(attempts !== undefined ? { attempts: intFlag(attempts, 'transfer-attempts') } : {}),
      ...(backoff !== undefined ? { initialDelayMs: intFlag(backoff, 'transfer-backoff-ms') } : {}),
    },
    ...(url ? { advertiseUrl: url } : {}),
    ...(shared ? { sharedDir: resolve(shared) } : {}),
    ...(tokenFile ? { tokenFile: resolve(tokenFile) } : {}),
  };
}
