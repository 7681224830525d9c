/**
 * Long fuzz run of the image reader, reporting cases per second. Run:
 *
 *   FUZZ_RUNS=200000 npm run bench:fuzz-image
 *
 * FUZZ_RUNS is the number of cases per input family (default 50,000);
 * FUZZ_SEED replays a run. The oracle is the CI test's (test/support/image-fuzz.ts).
 */
import fc from 'fast-check';
import {
  byteMutated,
  checkImage,
  randomBytes,
  recordMutated,
  type Outcome,
} from '../test/support/image-fuzz.js';

const runs = Number(process.env.FUZZ_RUNS ?? '50000');
const seed = process.env.FUZZ_SEED === undefined ? Date.now() | 0 : Number(process.env.FUZZ_SEED);

const families: [string, fc.Arbitrary<Buffer>][] = [
  ['byte-level damage', byteMutated],
  ['record-level damage, resealed', recordMutated],
  ['random bytes', randomBytes],
];

function main(): void {
  const lines = [`image fuzz, seed ${seed}, ${runs} cases per family`];
  let total = 0;
  let totalMs = 0;
  for (const [name, arb] of families) {
    const seen: Record<Outcome, number> = { decoded: 0, rejected: 0 };
    const start = process.hrtime.bigint();
    fc.assert(
      fc.property(arb, (buf) => {
        seen[checkImage(buf)]++;
      }),
      { numRuns: runs, seed },
    );
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    total += runs;
    totalMs += ms;
    const rate = Math.round(runs / (ms / 1000));
    lines.push(
      `  ${name}: ${rate} cases/s (${seen.decoded} decoded, ${seen.rejected} rejected, ${ms.toFixed(0)} ms)`,
    );
  }
  lines.push(
    `  total: ${total} cases in ${(totalMs / 1000).toFixed(1)} s, ${Math.round(total / (totalMs / 1000))} cases/s`,
  );
  // Generation dominates the figures above; this is the reader (plus re-encoding on success) alone.
  const inputs = fc.sample(fc.oneof(byteMutated, recordMutated), { numRuns: Math.min(runs, 20000), seed });
  const start = process.hrtime.bigint();
  for (const buf of inputs) checkImage(buf);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const bytes = inputs.reduce((n, b) => n + b.length, 0);
  lines.push(
    `  reader alone on ${inputs.length} damaged images (mean ${Math.round(bytes / inputs.length)} bytes): ` +
      `${Math.round(inputs.length / (ms / 1000))} images/s`,
  );
  process.stdout.write(lines.join('\n') + '\n');
}

main();
