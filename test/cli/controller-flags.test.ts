/**
 * `fdckpt controller`'s drain retry and webhook client flags through the real,
 * built CLI: a bad value is a usage error (exit 2, naming the flag) before
 * anything connects.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { fdckpt } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'fdckpt-flags-'));
const notPem = join(dir, 'ca.txt');
writeFileSync(notPem, 'not a certificate\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fdckpt controller drain retry and webhook client flags', () => {
  test.each([
    [['--drain-retries', 'many'], '--drain-retries must be a non-negative integer, got "many"'],
    [['--drain-backoff-seconds=-1'], '--drain-backoff-seconds must be a non-negative integer'],
    [['--drain-backoff-seconds', '-1'], '--drain-backoff-seconds needs a value'],
    [
      ['--drain-backoff-seconds', '60', '--drain-max-backoff-seconds', '30'],
      '--drain-max-backoff-seconds (30) must not be less than --drain-backoff-seconds (60)',
    ],
    [['--drain-max-backoff-seconds', '10'], 'must not be less than --drain-backoff-seconds (30)'],
    [['--webhook-client-names', 'a'], '--webhook-client-names needs --webhook-client-ca'],
    [['--webhook-client-ca', notPem], '--webhook-client-ca needs --webhook-port'],
    [
      ['--webhook-port', '0', '--webhook-client-ca', join(dir, 'none.pem')],
      `--webhook-client-ca ${join(dir, 'none.pem')}: ENOENT`,
    ],
    [
      ['--webhook-port', '0', '--webhook-client-ca', notPem],
      `--webhook-client-ca ${notPem}: no PEM certificate in it`,
    ],
  ])('%j is refused', (flags, message) => {
    const r = fdckpt('controller', '--launcher-host-path', '/nonexistent/fdckpt-hold', ...flags);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
  });

  test('the usage names them', () => {
    const r = fdckpt('controller', 'extra');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      '[--drain-retries 3] [--drain-backoff-seconds 30] [--drain-max-backoff-seconds 300]',
    );
    expect(r.stderr).toContain('[--webhook-client-ca FILE] [--webhook-client-names CN,...]');
  });
});
