/** `--log-level debug|info|warn|error` of the long-running commands (controller, agent, local). */
import { single, UsageError, type ParsedArgs } from '../command.js';
import { resolveLogLevel, type LogLevel } from '../../kube/log.js';

/** The flag's level, else FDCKPT_LOG_LEVEL's, else info; an unknown level is a usage error. */
export function logLevelFlag(parsed: ParsedArgs): LogLevel {
  try {
    return resolveLogLevel(single(parsed, 'log-level'));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message);
  }
}
