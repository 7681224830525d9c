/** What a migrated process's fd table must be, by default (Restore fds: Program). */
import { expect } from '@jest/globals';

/**
 * The source's table, except fds 1 and 2: those are the target container's own (its
 * log on node 2, so `kubectl logs` of the new pod works), not the source's.
 */
export function expectMigratedTable(after: Record<string, string>, before: Record<string, string>): void {
  expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
  for (const fd of Object.keys(before)) {
    if (fd === '1' || fd === '2') expect(after[fd]).toMatch(/\/local-node-2\/pods\/.*\/0\.log$/);
    else expect(after[fd]).toBe(before[fd]);
  }
}
