/**
 * The CLI keeps V8's young generation from growing (src/cli/young-generation.ts): a
 * capture keeps every record until the image is written, which used to double the
 * semi-spaces up to 16 MB each, a third of the peak RSS of a large capture.
 */
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useFixtures } from '../support/use-fixtures.js';

const bin = fileURLToPath(new URL('../../bin/fdckpt.js', import.meta.url));
// Preloaded into the CLI: at exit, the size V8's new space (both semi-spaces) grew to.
const hook =
  'data:text/javascript,' +
  encodeURIComponent(`import { getHeapSpaceStatistics } from 'node:v8';
process.on('exit', () => {
  const s = getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
  process.stderr.write('new_space ' + (s ? s.space_size : -1) + '\\n');
});`);
const fixture = useFixtures();

/** Runs the built CLI with the report hook; returns its exit status and new space in bytes. */
function newSpaceOf(...args: string[]): { status: number | null; bytes: number; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', hook, bin, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  const m = /^new_space (-?\d+)$/m.exec(r.stderr);
  return { status: r.status, bytes: m ? Number(m[1]) : NaN, stderr: r.stderr };
}

describe('the young generation of the fdckpt CLI', () => {
  test('stays at its starting size through a capture of 5000 fds', async () => {
    const fx = await fixture.withEnv({ FDPROC_MANY: '5000' }, 'mixed');
    const r = newSpaceOf('capture', '--pid', String(fx.pid), '--output', join(fx.dir, 'out.fdimg'), '--json');
    expect({ status: r.status, stderr: r.stderr.replace(/^new_space .*\n/m, '') }).toEqual({
      status: 0,
      stderr: '',
    });
    // Two 1 MB semi-spaces (V8 11's starting size); with growth they reach 16 MB each.
    expect(r.bytes).toBeGreaterThan(0);
    expect(r.bytes).toBeLessThanOrEqual(2.5 * 2 ** 20);
  });
});
