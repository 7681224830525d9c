/** Polling for tests that wait on a cluster or a process to reach a state. */
import { errorMessage } from '../../src/kube/errors.js';

/**
 * Polls `probe` every 100 ms until it returns a value; throws after `timeoutMs`
 * naming `what` and the last error the probe threw.
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(`timed out waiting for ${what}${last ? `: ${errorMessage(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
