/** KcmpSearch against this process's own fds: a pod file closed after capture is dropped, not fatal. */
import { expect, test } from '@jest/globals';
import { closeSync, openSync } from 'node:fs';
import { KcmpSearch } from '../../../src/agent/collect/kcmpsearch.js';

test('a pod fd closed between capture and the leak check is reported, and lookups still work', () => {
  const pid = process.pid;
  const kept = openSync('/dev/null', 'r');
  const closed = openSync('/dev/null', 'r');
  const dup = openSync('/dev/null', 'r');
  try {
    const search = new KcmpSearch();
    // One bucket (same key) of three distinct open files.
    search.add('null', pid, kept, 1);
    search.add('null', pid, closed, 2);
    search.add('null', pid, dup, 3);
    closeSync(closed); // the unfrozen pod closes it after capture
    expect(search.find('null', pid, kept)).toBe(1);
    expect(search.find('null', pid, dup)).toBe(3);
    expect(search.failures).toEqual([`pid ${pid} fd ${closed}: closed after capture, not compared`]);
  } finally {
    closeSync(kept);
    closeSync(dup);
  }
});
