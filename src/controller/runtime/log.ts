/** A minimal structured logger: one JSON line per entry on stderr, so that kubectl logs stays greppable. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Logger writing JSON lines for `component`. */
export function jsonLogger(
  component: string,
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  const entry = (level: string, message: string, fields?: Record<string, unknown>): void =>
    write(`${JSON.stringify({ time: new Date().toISOString(), level, component, message, ...fields })}\n`);
  return {
    info: (m, f) => entry('info', m, f),
    warn: (m, f) => entry('warn', m, f),
    error: (m, f) => entry('error', m, f),
  };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };
