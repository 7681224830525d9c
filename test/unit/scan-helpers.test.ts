/**
 * Two helpers the hot loops use instead of allocating: the saved-path check scans for
 * `.`/`..` components (no split), and u64 reads a u64 from its halves (no BigInt).
 * Each must answer exactly as the allocating form it replaced.
 */
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { unnormalized } from '../../src/agent/image/paths.js';
import { i64, u64 } from '../../src/agent/linux/stat.js';

/** The split form unnormalized had before (issue 14). */
function bySplit(path: string): string | undefined {
  if (path === '/') return undefined;
  if (path.includes('//')) return 'a doubled /';
  if (path.endsWith('/')) return 'a trailing /';
  for (const part of path.split('/').slice(1)) {
    if (part === '.' || part === '..') return `a ${part} component`;
  }
  return undefined;
}

describe('unnormalized', () => {
  test('names the first . or .. component, as a split would', () => {
    expect(unnormalized('/var/log/../../etc/shadow')).toBe('a .. component');
    expect(unnormalized('/a/./b/../c')).toBe('a . component');
    expect(unnormalized('/a/..')).toBe('a .. component');
    expect(unnormalized('/.')).toBe('a . component');
    expect(unnormalized('/a/.hidden/..b/...')).toBeUndefined();
    expect(unnormalized('/')).toBeUndefined();
  });

  test('answers as the split form on any path of /, . and short names', () => {
    const part = fc.constantFrom('', '.', '..', '...', 'a', '.a', 'a.', '..a', 'é');
    const path = fc.array(part, { maxLength: 8 }).map((ps) => ps.join('/'));
    fc.assert(
      fc.property(fc.boolean(), path, (absolute, p) => {
        const q = absolute ? `/${p}` : p;
        expect(unnormalized(q)).toBe(bySplit(q));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('u64', () => {
  test('is Number(readBigUInt64LE) for every u64, rounding included', () => {
    const buf = Buffer.alloc(16);
    const edges = [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 64n - 1n];
    for (const v of edges) {
      buf.writeBigUInt64LE(v, 3);
      expect(u64(buf, 3)).toBe(Number(buf.readBigUInt64LE(3)));
    }
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (v) => {
        buf.writeBigUInt64LE(v, 8);
        expect(u64(buf, 8)).toBe(Number(v));
      }),
      { numRuns: 20000 },
    );
  });
});

describe('i64', () => {
  test('is Number(readBigInt64LE) for every i64, rounding included', () => {
    const buf = Buffer.alloc(16);
    const edges = [
      0n,
      -1n,
      1n,
      -(2n ** 31n),
      2n ** 53n + 1n,
      -(2n ** 53n) - 1n,
      2n ** 63n - 1n,
      -(2n ** 63n),
    ];
    for (const v of edges) {
      buf.writeBigInt64LE(v, 5);
      expect(i64(buf, 5)).toBe(Number(buf.readBigInt64LE(5)));
    }
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (v) => {
        buf.writeBigInt64LE(v, 8);
        expect(i64(buf, 8)).toBe(Number(v));
      }),
      { numRuns: 20000 },
    );
  });
});
