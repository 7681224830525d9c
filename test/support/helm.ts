/**
 * helm for the chart tests: $FDCKPT_HELM when set, else what scripts/helm/build.sh
 * prints — it builds the pinned helm from its Go module once per machine (progress on
 * stderr; npm test's pretest runs it first) and answers from its cache after that.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BUILD = fileURLToPath(new URL('../../scripts/helm/build.sh', import.meta.url));

let cached: string | undefined;

/** The helm binary; throws (the test fails, never skips) saying how to get it. */
export function helmBinary(): string {
  if (cached) return cached;
  let bin = process.env['FDCKPT_HELM'];
  if (!bin) {
    const r = spawnSync('bash', [BUILD], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
    if (r.status !== 0)
      throw new Error(
        `test prerequisite missing: helm (scripts/helm/build.sh failed: ${r.error?.message ?? `status ${r.status}`}; it needs Go and the Go module proxy)`,
      );
    bin = r.stdout.trim().split('\n').pop() ?? '';
  }
  if (!existsSync(bin)) throw new Error(`test prerequisite missing: helm at ${bin}`);
  cached = bin;
  return bin;
}
