/**
 * The reconcile error model: a thrown error is retried with backoff; a
 * TerminalError is recorded and not retried (the input must change first, and
 * that change will queue the key again).
 */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

/** The HTTP status carried by a client-node ApiException or a watch error, if any. */
export function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

export function isNotFound(err: unknown): boolean {
  return httpStatus(err) === 404;
}

export function isConflict(err: unknown): boolean {
  return httpStatus(err) === 409;
}

export function isGone(err: unknown): boolean {
  return httpStatus(err) === 410;
}

/** One line for logs and conditions, without client-node's multi-line bodies. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const body = (err as { body?: unknown }).body;
    if (typeof body === 'string') {
      try {
        const parsed = JSON.parse(body) as { message?: string };
        if (parsed.message) return parsed.message;
      } catch {
        // not JSON: fall through to the error's own message
      }
    }
    return err.message.split('\n')[0] ?? err.message;
  }
  return String(err);
}
