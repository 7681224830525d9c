/**
 * `fdckpt inspect` and `fdckpt diff` on the images older releases wrote
 * (test/fixtures/images): each shows its own format version, and the same process
 * captured by the format 1 and format 3 releases diffs as equal.
 */
import { describe, expect, test } from '@jest/globals';
import { join } from 'node:path';
import { fdckpt } from '../support/cli.js';
import { FIXTURES, FIXTURE_DIR } from '../support/version-fixtures.js';

const at = (file: string): string => join(FIXTURE_DIR, file);

describe.each(FIXTURES)('fdckpt inspect $file', (fx) => {
  test(`names format ${fx.version}, in the table and in --json`, () => {
    const table = fdckpt('inspect', at(fx.file));
    expect(table.status).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(new RegExp(`^image v${fx.version}  node fixture-node  `));
    expect(table.stdout).toContain(`process ${fx.child} (python3)`);
    const json = fdckpt('inspect', '--json', at(fx.file));
    expect(json.status).toBe(0);
    const parsed = JSON.parse(json.stdout) as { version: number; header: { binding?: unknown } };
    expect(parsed.version).toBe(fx.version);
    expect(parsed.header.binding).toEqual(fx.binding);
  });
});

describe('fdckpt diff across format versions', () => {
  test('format 1 and format 3 captures of one process: no differences, exit 0', () => {
    const r = fdckpt('diff', at('v1.fdckpt'), at('v3.fdckpt'));
    expect(r).toMatchObject({ status: 0, stdout: 'no differences\n', stderr: '' });
    const json = fdckpt('diff', '--json', at('v3.fdckpt'), at('v1.fdckpt'));
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ equal: true, differences: [] });
  });

  test('format 1 against a format 2 image of another table: the differences, exit 1', () => {
    const r = fdckpt('diff', at('v1.fdckpt'), at('v2-bound.fdckpt'));
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^\d+ differences:\n {2}process count 3 != 1\n/);
  });
});
