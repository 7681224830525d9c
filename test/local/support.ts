/** Shared helpers for the local control plane's tests. */
export { kubeConfigFor } from '../../src/local/kubeconfig.js';

/** Resolves when `check` returns a value other than undefined; polls every 20 ms, gives up after `ms` (a deadline for a loaded machine, not a timing assertion). */
export async function eventually<T>(
  check: () => T | undefined | Promise<T | undefined>,
  what: string,
  ms = 30000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The parsed Status body of a client-node ApiException (its body is the raw response text). */
export function statusOf(err: unknown): {
  code?: number;
  reason?: string;
  details?: { causes?: { field: string; reason: string }[] };
} {
  const body = (err as { body?: unknown }).body;
  if (typeof body === 'string') return JSON.parse(body) as ReturnType<typeof statusOf>;
  return body ?? {};
}
