/**
 * kubectl for the tests that drive the local control plane with it: KUBECTL, else the
 * one built with the control plane's components (scripts/kube/build.sh), of the same
 * version as the API server. Missing kubectl fails under CI=true and is skipped loudly
 * elsewhere.
 */
import { describe } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { kubeBinary } from '../../src/local/cluster/binaries.js';

export const KUBECTL = process.env['KUBECTL'] ?? kubeBinary('kubectl');

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
  const message = `kubectl (${KUBECTL}) is missing: run scripts/kube/build.sh (builds it with the control plane)`;
  if (process.env['CI'] === 'true') throw new Error(message);
  process.stderr.write(`${suite}: SKIPPED, ${message}\n`);
  return describe.skip;
}

/** `kubectl get events` arguments listing Warning events as `Kind/name Reason` lines. */
export const WARNING_EVENTS = [
  'get',
  'events',
  '--field-selector',
  'type=Warning',
  '-o',
  'jsonpath={range .items[*]}{.involvedObject.kind}/{.involvedObject.name} {.reason}{"\\n"}{end}',
];

/** The lines of WARNING_EVENTS' output about objects whose `Kind/name` matches `about`. */
export function warningsAbout(stdout: string, about: RegExp): string[] {
  return stdout.split('\n').filter((line) => about.test(line));
}
