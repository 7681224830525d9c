/**
 * `fdckpt controller`'s drain retry flags through the real, built CLI: a bad
 * value is a usage error (exit 2, naming the flag) before anything connects.
 */
import { describe, expect, test } from '@jest/globals';
import { fdckpt } from '../support/cli.js';

describe('fdckpt controller drain retry flags', () => {
  test.each([
    [['--drain-retries', 'many'], '--drain-retries must be a non-negative integer, got "many"'],
    [['--drain-backoff-seconds=-1'], '--drain-backoff-seconds must be a non-negative integer'],
    [['--drain-backoff-seconds', '-1'], '--drain-backoff-seconds needs a value'],
    [
      ['--drain-backoff-seconds', '60', '--drain-max-backoff-seconds', '30'],
      '--drain-max-backoff-seconds (30) must not be less than --drain-backoff-seconds (60)',
    ],
    [['--drain-max-backoff-seconds', '10'], 'must not be less than --drain-backoff-seconds (30)'],
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
  });
});
