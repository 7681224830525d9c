import { describe, expect, test } from '@jest/globals';
import { statSync } from 'node:fs';
import { devMajor, devMinor, makeDev } from '../../src/agent/linux/devt.js';

describe('dev_t encoding (one copy for capture, file types and the leak scan)', () => {
  test('agrees with what stat(2) reports for real devices', () => {
    // /dev/null is 1:3 and /dev/zero 1:5 on every Linux.
    expect(makeDev(1, 3)).toBe(statSync('/dev/null').rdev);
    expect(makeDev(1, 5)).toBe(statSync('/dev/zero').rdev);
    const root = statSync('/').dev;
    expect(makeDev(devMajor(root), devMinor(root))).toBe(root);
  });

  test('round-trips the kernel’s whole range: 12-bit majors, 20-bit minors (both split fields)', () => {
    for (const [major, minor] of [
      [0, 0],
      [8, 1],
      [259, 70_000],
      [4095, 0xfffff],
    ] as const) {
      const dev = makeDev(major, minor);
      expect([major, minor, devMajor(dev), devMinor(dev)]).toEqual([major, minor, major, minor]);
    }
  });
});
