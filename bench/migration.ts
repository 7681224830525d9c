/**
 * bench/migration: downtime breakdown of migrating a bare pod whose process
 * holds N regular-file fds, between the two nodes of the local control plane
 * (two process kubelets, two agents with separate data dirs, image fetched
 * over pinned TLS between them). Figures are the Migration's status.timings:
 * freeze and capture (agent, source), transfer (agent, target), restore
 * (replay into the launcher), downtime (freeze + controller-observed capture
 * end → replayed; see docs/migration.md for what it leaves out), and total
 * (Migration created → Succeeded, an upper bound on the real downtime).
 * Run: npm run bench:migration
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MigrationTimings } from '../src/api/index.js';
import type { TwoNodes } from '../test/support/twonodes.js';
import { barePod, fdTable, finished, kubectl, sleepOf, startTwoNodes } from '../test/support/twonodes.js';

const SIZES = [1000, 10000];
const RUNS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** A process that opens n distinct files (inheritable), then becomes sleep. */
function script(dir: string, n: number): string {
  return (
    `exec python3 -c "import os, resource; resource.setrlimit(resource.RLIMIT_NOFILE, (${n + 64}, ${n + 64}))\n` +
    `for i in range(${n}):\n  fd = os.open('${dir}/f%d' % i, os.O_RDONLY); os.set_inheritable(fd, True)\n` +
    `os.execvp('sleep', ['sleep', '1000'])"`
  );
}

async function once(t: TwoNodes, n: number, run: number): Promise<MigrationTimings & { fds: number }> {
  const [n1, n2] = t.cp.nodes.map((x) => x.name) as [string, string];
  const dir = join(t.tmp, `files-${n}`);
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) writeFileSync(join(dir, `f${i}`), 'x');
  const pod = `bench-${n}-${run}`;
  await barePod(t, pod, n1, script(dir, n));
  const table = fdTable(await sleepOf(t, pod));
  await kubectl(
    t,
    `apiVersion: fdckpt.io/v1alpha1\nkind: Migration\nmetadata: {name: ${pod}, namespace: default}\nspec: {podName: ${pod}, targetNode: ${n2}}\n`,
    'apply',
    '-f',
    '-',
  );
  const m = await finished(t, pod);
  if (m.status?.phase !== 'Succeeded')
    throw new Error(`migration ${pod}: ${m.status?.rollbackReason ?? 'failed'}`);
  const restored = fdTable(await sleepOf(t, m.status.targetPod ?? ''));
  if (JSON.stringify(restored) !== JSON.stringify(table))
    throw new Error(`migration ${pod}: the restored table differs`);
  return { ...m.status.timings, fds: Object.keys(table).length };
}

async function main(): Promise<void> {
  const t = await startTwoNodes();
  try {
    const rows: string[] = [];
    for (const n of SIZES) {
      const runs: (MigrationTimings & { fds: number })[] = [];
      for (let r = 0; r < RUNS; r++) runs.push(await once(t, n, r));
      const col = (k: keyof MigrationTimings): string => String(median(runs.map((x) => x[k] ?? NaN)));
      rows.push(
        `| ${runs[0]?.fds ?? n} | ${col('freezeMs')} | ${col('captureMs')} | ${col('transferMs')} | ${col('restoreMs')} | ${col('downtimeMs')} | ${col('totalMs')} |`,
      );
    }
    process.stdout.write(
      `Median of ${RUNS} runs, ms.\n\n| fds | freeze | capture | transfer | restore | downtime | total |\n|---:|---:|---:|---:|---:|---:|---:|\n${rows.join('\n')}\n`,
    );
  } finally {
    await t.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
