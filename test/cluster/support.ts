/** Shared helpers for the local control plane's tests. */
import { existsSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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

/** Kills whatever a failed test left in the private cgroup tree, then removes the tree. */
export async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) await removeTree(join(dir, e.name));
  writeFileSync(join(dir, 'cgroup.kill'), '1');
  for (let i = 0; i < 500; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
