/**
 * Property tests of the image: random valid checkpoints round-trip exactly,
 * and no input, however damaged, makes the reader do anything but return a
 * Checkpoint or throw ImageFormatError. 12,000 cases by default; FUZZ_SCALE
 * multiplies them (bench/fuzz-image.ts runs far more and reports cases/s).
 */
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/agent/image/index.js';
import { arbCheckpoint } from '../support/image-fixtures.js';
import { byteMutated, checkImage, randomBytes, recordMutated, type Outcome } from '../support/image-fuzz.js';

const scale = Number(process.env.FUZZ_SCALE ?? '1');
const runs = (n: number): number => Math.round(n * scale);

function tally(arb: fc.Arbitrary<Buffer>, numRuns: number): Record<Outcome, number> {
  const seen: Record<Outcome, number> = { decoded: 0, rejected: 0 };
  fc.assert(
    fc.property(arb, (buf) => {
      seen[checkImage(buf)]++;
    }),
    { numRuns },
  );
  return seen;
}

describe('image properties', () => {
  test('random valid checkpoints round-trip exactly (1,000 cases)', () => {
    fc.assert(
      fc.property(arbCheckpoint(), (cp) => {
        expect(decodeCheckpoint(encodeCheckpoint(cp))).toStrictEqual(cp);
      }),
      { numRuns: runs(1000) },
    );
  });

  test('byte-level damage: a Checkpoint that re-encodes identically, or ImageFormatError (5,000 cases)', () => {
    const seen = tally(byteMutated, runs(5000));
    expect(seen.rejected).toBeGreaterThan(0);
  });

  test('record-level damage, resealed: same oracle (4,000 cases)', () => {
    const seen = tally(recordMutated, runs(4000));
    // Some swaps and duplications keep the image valid; most break a rule past the checksum.
    expect(seen.decoded).toBeGreaterThan(0);
    expect(seen.rejected).toBeGreaterThan(seen.decoded);
  });

  test('random bytes: always ImageFormatError (2,000 cases)', () => {
    const seen = tally(randomBytes, runs(2000));
    expect(seen.decoded).toBe(0);
  });
});
