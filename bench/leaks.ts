/**
 * bench/leaks: (1) the host scan with many processes holding ~100k fds in
 * total (target < 1 s); (2) how long a pod stays frozen in captureCgroup for
 * 1k and 10k fds, next to the capture alone (the freeze window must not be
 * longer than the capture itself: the leak scan runs after the thaw).
 * Run: npm run bench:leaks   (root; needs cgroup v2)
 */
import { mkdtempSync, readdirSync, writeFileSync, rmSync } from 'node:fs';
import { FdDir } from '../src/agent/linux/hostfd.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capture } from '../src/agent/capture/index.js';
import { listTasks, resolveCgroup } from '../src/agent/cgroup/cgroup.js';
import { captureCgroup } from '../src/agent/collect/cgroupcapture.js';
import { findLeaks } from '../src/agent/collect/leaks.js';
import type { LeakReport } from '../src/agent/collect/report.js';
import { destroyCgroup, killAll, makeCgroup, startPython, type Started } from '../test/support/cgtest.js';

/**
 * A process holding `n` fds, the usual mix: pipes (both ends), socketpairs, two
 * regular files opened many times, and an anonymous-inode file per round
 * (eventfd, or a memfd for the "disjoint" pod, which shares nothing with the host).
 */
const HOLDER = (n: number, fileA = '/etc/hostname', fileB = '/etc/hosts', anon = 'os.eventfd(0)'): string => `
import os, socket, resource, time
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
keep = []
for i in range(${n} // 7):
    keep.append(os.pipe())
    keep.append(socket.socketpair())
    keep.append(os.open("${fileA}", os.O_RDONLY))
    keep.append(os.open("${fileB}", os.O_RDONLY))
    keep.append(${anon})
ready({})
time.sleep(3600)
`;

/** The floor: every link of every process, nothing else (the scan's native call; bench/floors has C's). */
function floor(): number {
  const t0 = performance.now();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const dir = FdDir.open(Number(name));
    if (!dir) continue;
    dir.links(() => undefined);
    dir.close();
  }
  return performance.now() - t0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const started: Started[] = [];
const dirs: string[] = [];
const tmps: string[] = [];

async function main(): Promise<void> {
  const hostProcs = 10;
  const perProc = 10_000;
  for (let i = 0; i < hostProcs; i++) started.push(await startPython(HOLDER(perProc)));

  console.log(
    `machine: ${(await import('node:os')).cpus()[0]?.model ?? '?'} x${(await import('node:os')).cpus().length}, kernel ${(await import('node:os')).release()}, node ${process.version}`,
  );
  console.log(
    `date: ${new Date().toISOString()}, load average ${(await import('node:os'))
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const tmp = mkdtempSync(join(tmpdir(), 'fdckpt-bench-'));
  tmps.push(tmp);
  writeFileSync(join(tmp, 'a'), 'a');
  writeFileSync(join(tmp, 'b'), 'b');
  const pods = [
    { label: 'disjoint', fds: 1_000 },
    { label: 'disjoint', fds: 10_000 },
    { label: 'overlapping', fds: 1_000 },
    { label: 'overlapping', fds: 10_000 },
  ];
  console.log(
    '\npod                 host procs  host fds  floor ms  scan ms (1 thread)  scan ms (2)  findLeaks ms  candidates  leaks  notes   (median of 5)',
  );
  for (const p of pods) {
    const dir = makeCgroup('v2');
    dirs.push(dir);
    const script =
      p.label === 'disjoint'
        ? HOLDER(p.fds, join(tmp, 'a'), join(tmp, 'b'), 'os.memfd_create("m")')
        : HOLDER(p.fds);
    started.push(await startPython(script, dir));
    const tasks = listTasks(resolveCgroup(dir));
    const { checkpoint } = capture(tasks.pids);
    const scans: number[] = [];
    const totals: number[] = [];
    const floors: number[] = [];
    const reports: LeakReport[] = [];
    const singles: number[] = [];
    for (let i = 0; i < 5; i++) {
      floors.push(floor());
      singles.push(findLeaks(checkpoint, tasks.tids, { threads: 1, inodeNotes: false }).scanned.ms);
      const t0 = performance.now();
      const report = findLeaks(checkpoint, tasks.tids);
      totals.push(performance.now() - t0);
      scans.push(report.scanned.ms);
      reports.push(report);
    }
    const r = reports[reports.length - 1]!;
    console.log(
      `${`${p.label} ${p.fds}`.padEnd(19)} ${String(r.scanned.processes).padEnd(11)} ${String(r.scanned.fds).padEnd(9)} ` +
        `${median(floors).toFixed(0).padEnd(9)} ${median(singles).toFixed(0).padEnd(19)} ${median(scans).toFixed(0).padEnd(12)} ` +
        `${median(totals).toFixed(0).padEnd(13)} ` +
        `${String(r.scanned.candidates).padEnd(11)} ${String(r.leaks.length).padEnd(6)} ${r.notes.length}`,
    );
  }

  console.log('\npod fds  frozen ms  freeze-wait ms  capture ms  collect ms (after thaw)   (median of 5)');
  for (const [i, podFds] of [1_000, 10_000].entries()) {
    // the two disjoint pods
    const runs: { frozenMs: number; freezeWaitMs: number; captureMs: number; collectMs: number }[] = [];
    for (let r = 0; r < 5; r++) runs.push((await captureCgroup(dirs[i]!, { leakPolicy: 'warn' })).timings);
    const m = (k: keyof (typeof runs)[number]): string => median(runs.map((x) => x[k])).toFixed(1);
    console.log(
      `${String(podFds).padEnd(8)} ${m('frozenMs').padEnd(10)} ${m('freezeWaitMs').padEnd(15)} ${m('captureMs').padEnd(11)} ${m('collectMs')}`,
    );
  }
}

try {
  await main();
} finally {
  await killAll(started);
  for (const d of dirs) await destroyCgroup(d);
  for (const t of tmps) rmSync(t, { recursive: true, force: true });
}
