/**
 * kubectl for the tests that drive the local control plane with it: KUBECTL, else
 * the one on PATH (npm's pretest installs Debian's with scripts/ensure-kubectl.sh).
 * Missing kubectl fails under CI=true and is skipped loudly elsewhere.
 */
import { describe } from '@jest/globals';
import { execFileSync } from 'node:child_process';

export const KUBECTL = process.env['KUBECTL'] ?? 'kubectl';

let found: boolean | undefined;

/** Whether kubectl runs here (asked once). */
export function hasKubectl(): boolean {
  if (found === undefined) {
    try {
      execFileSync(KUBECTL, ['version', '--client'], { encoding: 'utf8', stdio: 'pipe' });
      found = true;
    } catch {
      found = false;
    }
  }
  return found;
}

/** `describe` when kubectl is there, `describe.skip` (said on stderr) when not; throws under CI. */
export function describeWithKubectl(suite: string): typeof describe | typeof describe.skip {
  if (hasKubectl()) return describe;
  const message = `kubectl (${KUBECTL}) is missing: run scripts/ensure-kubectl.sh (installs Debian's kubernetes-client)`;
  if (process.env['CI'] === 'true') throw new Error(message);
  process.stderr.write(`${suite}: SKIPPED, ${message}\n`);
  return describe.skip;
}
