/**
 * The components' structured logger: one JSON line per entry on stderr
 * (`{"level":"info","time":"…","component":"controller","msg":"…",…fields}`), so
 * that `kubectl logs` stays greppable and log collectors parse it as is. pino
 * writes the lines; the rest of the code sees only this small interface, so a
 * test or the demo can pass a silent one. docs/logs.md lists the fields.
 */
import { pino, stdTimeFunctions } from 'pino';

/** The levels the `--log-level` flag and FDCKPT_LOG_LEVEL accept, most verbose first. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Without a flag or FDCKPT_LOG_LEVEL: what an operator wants to read by default. */
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  /** Entries below it are dropped; default DEFAULT_LOG_LEVEL. */
  level?: LogLevel;
  /** Where each line goes (with its newline); default stderr. */
  write?: (line: string) => void;
}

/** True when `value` names a level. */
export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * The level a command runs at: its `--log-level` flag, else FDCKPT_LOG_LEVEL (what the
 * deploy/ manifests and the Helm chart set), else info. Throws on an unknown level, so
 * that the command reports a usage error instead of logging at a level nobody asked for.
 */
export function resolveLogLevel(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): LogLevel {
  const [value, source] =
    flag !== undefined ? [flag, '--log-level'] : [env['FDCKPT_LOG_LEVEL'], 'FDCKPT_LOG_LEVEL'];
  if (value === undefined || value === '') return DEFAULT_LOG_LEVEL;
  if (!isLogLevel(value))
    throw new Error(`${source} ${JSON.stringify(value)}: use one of ${LOG_LEVELS.join(', ')}`);
  return value;
}

/** A logger writing JSON lines for `component` at `options.level` and above. */
export function jsonLogger(component: string, options: LoggerOptions = {}): Logger {
  const write = options.write;
  const logger = pino(
    {
      level: options.level ?? DEFAULT_LOG_LEVEL,
      // pid and hostname are what the pod already says; the component tells the agent's
      // lines from the controller's when the local control plane runs both in one process.
      base: { component },
      // Level names, not pino's numbers: `kubectl logs | grep '"level":"error"'` must work.
      formatters: { level: (label) => ({ level: label }) },
      timestamp: stdTimeFunctions.isoTime,
    },
    // Synchronous: the last lines before a crash or an exit must not be lost in a buffer.
    write ? { write } : pino.destination({ fd: 2, sync: true }),
  );
  return {
    debug: (m, f) => logger.debug(f ?? {}, m),
    info: (m, f) => logger.info(f ?? {}, m),
    warn: (m, f) => logger.warn(f ?? {}, m),
    error: (m, f) => logger.error(f ?? {}, m),
  };
}

/** A logger that drops everything (tests, the demo). */
export const silentLogger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
