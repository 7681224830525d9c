/**
 * bench/criu/baseline: CRIU on this machine, on the workload of bench/capture
 * (test/fixtures/fdproc.py many: N distinct files, mixed flags and offsets), as
 * the baseline for fdckpt's capture and replay figures.
 *
 * For each N: `criu dump --leave-running` (what capture compares to), then full
 * cycles `criu dump` (kills) + `criu restore -d`, REPS times each; wall time of
 * each command, CRIU's own stats (crit show stats-dump / stats-restore), and one
 * extra -v4 run whose log timestamps split fd work from the rest.
 * Run: npm run bench:criu   (env: BENCH_REPS=7, CRIU_N=100,1000,10000,19000)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { availableParallelism, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setChildSubreaper } from '../../src/agent/linux/subreaper.js';
import {
  dumpPhases,
  mustSucceed,
  readStats,
  restorePhases,
  runCriu,
  taskCpuMs,
  type DumpPhases,
  type RestorePhases,
} from './criu-run.js';
import {
  killAllOnSignal,
  killAndReap,
  removeDir,
  removeFixtureDir,
  startDetached,
  trackDir,
  waitGone,
} from './detached-fixture.js';

const reps = Number(process.env.BENCH_REPS ?? 7);
const sizes = (process.env.CRIU_N ?? '100,1000,10000,19000').split(',').map(Number);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}

function min(xs: number[]): number {
  return xs.length ? Math.min(...xs) : NaN;
}

/** "pos flags" of every fd: what a restore must give back. */
function fdTable(pid: number): Map<string, string> {
  const t = new Map<string, string>();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1');
    const pos = /^pos:\s+(\d+)/m.exec(info)?.[1];
    const flags = /^flags:\s+(\d+)/m.exec(info)?.[1];
    t.set(fd, `pos ${pos} flags ${flags}`);
  }
  return t;
}

function compareTables(before: Map<string, string>, after: Map<string, string>): string {
  const diffs: string[] = [];
  for (const [fd, v] of before) if (after.get(fd) !== v) diffs.push(`fd ${fd}: ${v} -> ${after.get(fd)}`);
  for (const fd of after.keys()) if (!before.has(fd)) diffs.push(`fd ${fd}: new after restore`);
  return diffs.length ? `${diffs.length} fds differ, e.g. ${diffs.slice(0, 3).join('; ')}` : 'identical';
}

interface Row {
  n: number;
  fds: number;
  dumpLR: number[];
  dump: number[];
  restore: number[];
  /** criu + parasite CPU ms of dump --leave-running. */
  dumpCpu: number[];
  /** criu + restored task CPU ms of restore -d. */
  restoreCpu: number[];
  frozen: number[];
  mem: number[];
  restoreTime: number[];
  check: string;
  dumpPhases?: DumpPhases;
  restorePhases?: RestorePhases;
  error?: string;
}

function imageDir(): string {
  return mkdtempSync(join(tmpdir(), 'fdckpt-criu-img-'));
}

async function measure(criu: string, n: number): Promise<Row> {
  const fx = await startDetached(n);
  const row: Row = {
    n,
    fds: fx.fds,
    dumpLR: [],
    dump: [],
    restore: [],
    dumpCpu: [],
    restoreCpu: [],
    frozen: [],
    mem: [],
    restoreTime: [],
    check: '',
  };
  const dirs: string[] = [];
  const img = (): string => {
    const d = imageDir();
    trackDir(d);
    dirs.push(d);
    return d;
  };
  const pid = String(fx.pid);
  try {
    const before = fdTable(fx.pid);
    for (let i = 0; i < reps; i++) {
      const d = img();
      const parasite0 = taskCpuMs(fx.pid);
      const r = runCriu(criu, ['dump', '-t', pid, '-D', d, '-o', 'dump.log', '--leave-running']);
      mustSucceed(`dump --leave-running N=${n}`, r, join(d, 'dump.log'));
      row.dumpLR.push(r.ms);
      row.dumpCpu.push(r.cpuMs + taskCpuMs(fx.pid) - parasite0);
      const st = readStats(d, 'dump');
      if (st) {
        row.frozen.push(st.frozen_time / 1000);
        row.mem.push((st.memdump_time + st.memwrite_time) / 1000);
      }
      removeDir(d);
    }
    for (let i = 0; i < reps; i++) {
      const d = img();
      const dr = runCriu(criu, ['dump', '-t', pid, '-D', d, '-o', 'dump.log']);
      mustSucceed(`dump N=${n}`, dr, join(d, 'dump.log'));
      // The dumped task was killed; its pid must be free again before CRIU restores it.
      await waitGone(fx.pid);
      const rr = runCriu(criu, ['restore', '-d', '-D', d, '-o', 'restore.log']);
      mustSucceed(`restore -d N=${n}`, rr, join(d, 'restore.log'));
      row.dump.push(dr.ms);
      row.restore.push(rr.ms);
      // A restored task is a new process: all its CPU time so far is its restore.
      row.restoreCpu.push(rr.cpuMs + taskCpuMs(fx.pid));
      const st = readStats(d, 'restore');
      if (st) row.restoreTime.push(st.restore_time / 1000);
      if (i === 0) row.check = compareTables(before, fdTable(fx.pid));
      removeDir(d);
    }
    // Logging every fd at -v4 costs time itself: these phases are for proportions.
    const d1 = img();
    const p1 = runCriu(criu, ['dump', '-t', pid, '-D', d1, '-o', 'dump.log', '-v4', '--leave-running']);
    mustSucceed(`dump -v4 N=${n}`, p1, join(d1, 'dump.log'));
    row.dumpPhases = dumpPhases(join(d1, 'dump.log'));
    const d2 = img();
    mustSucceed(
      `dump N=${n}`,
      runCriu(criu, ['dump', '-t', pid, '-D', d2, '-o', 'dump.log']),
      join(d2, 'dump.log'),
    );
    await waitGone(fx.pid);
    const p2 = runCriu(criu, ['restore', '-d', '-D', d2, '-o', 'restore.log', '-v4']);
    mustSucceed(`restore -v4 N=${n}`, p2, join(d2, 'restore.log'));
    row.restorePhases = restorePhases(join(d2, 'restore.log'));
  } catch (err) {
    row.error = String(err instanceof Error ? err.message : err);
  } finally {
    await killAndReap(fx.pid);
    removeFixtureDir(fx);
    for (const d of dirs) removeDir(d);
  }
  return row;
}

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');

function machine(criu: string): string[] {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '?';
  const unixSockets = readFileSync('/proc/net/unix', 'utf8').trim().split('\n').length - 1;
  const version = execFileSync(criu, ['--version'], { encoding: 'utf8' }).split('\n')[0];
  return [
    `date ${new Date().toISOString()}  nproc ${availableParallelism()}  kernel ${release()}  cpu ${cpu}`,
    `load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}  unix sockets in this netns ${unixSockets}  ${criu} ${version}  reps ${reps}`,
  ];
}

const ensure = fileURLToPath(new URL('../../../bench/criu/ensure-criu.sh', import.meta.url));
const criu = execFileSync('sh', [ensure], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
// CRIU orphans the restored task (restore -d); as subreaper we get it, and reap it.
setChildSubreaper();
killAllOnSignal();
for (const line of machine(criu)) console.log(line);

const rows: Row[] = [];
for (const n of sizes) {
  const row = await measure(criu, n);
  rows.push(row);
  if (row.error) console.log(`N=${n}: FAILED: ${row.error}`);
  else console.log(`N=${n} done (restored table vs original: ${row.check})`);
}

const ok = rows.filter((x) => !x.error);
const mm = (xs: number[]): string => `${f1(median(xs))} (${f1(min(xs))})`.padEnd(16);
const perFd = (xs: number[], r: Row): string => f2((median(xs) * 1000) / r.fds).padStart(8);

console.log(`\nwall time, ms: median (min) of ${reps}; µs/fd = median / fds`);
console.log('N      fds    dump LR ms       µs/fd    dump ms          restore ms       µs/fd');
for (const r of ok) {
  console.log(
    [
      String(r.n).padEnd(6),
      String(r.fds).padEnd(6),
      mm(r.dumpLR),
      perFd(r.dumpLR, r),
      mm(r.dump),
      mm(r.restore),
      perFd(r.restore, r),
    ].join(' '),
  );
}

console.log(
  '\nCPU time, ms: median (min); dump = criu + its parasite in the dumpee, restore = criu + the restored task',
);
console.log("and CRIU's own stats (median): frozen_time, memdump+memwrite, restore_time");
console.log('N      dump LR CPU      µs/fd    restore CPU      µs/fd    frozen ms  mem ms  restore_time ms');
for (const r of ok) {
  console.log(
    [
      String(r.n).padEnd(6),
      mm(r.dumpCpu),
      perFd(r.dumpCpu, r),
      mm(r.restoreCpu),
      perFd(r.restoreCpu, r),
      f1(median(r.frozen)).padStart(9),
      f1(median(r.mem)).padStart(7),
      f1(median(r.restoreTime)).padStart(16),
    ].join(' '),
  );
}

if (ok.length >= 2) {
  const a = ok[0]!;
  const b = ok[ok.length - 1]!;
  const slope = (f: (r: Row) => number[]): string =>
    f2(((median(f(b)) - median(f(a))) * 1000) / (b.fds - a.fds));
  console.log(
    `\nmarginal cost N=${a.n}..${b.n} (medians), µs/fd: dump LR wall ${slope((r) => r.dumpLR)}, ` +
      `CPU ${slope((r) => r.dumpCpu)}; restore wall ${slope((r) => r.restore)}, CPU ${slope((r) => r.restoreCpu)}`,
  );
}

console.log('\nphases from one -v4 run (ms; -v4 logs several lines per fd, so slower than above)');
console.log(
  'N      | dump: setup  seize+sockets  fd list  files  memory  total | restore: images  fdinfo  open fds  total | files µs/fd  open µs/fd',
);
for (const r of ok) {
  const d = r.dumpPhases!;
  const p = r.restorePhases!;
  console.log(
    [
      String(r.n).padEnd(6),
      '|      ',
      f1(d.setup).padStart(5),
      f1(d.seizeAndSockets).padStart(14),
      f1(d.fdList).padStart(8),
      f1(d.files).padStart(6),
      f1(d.memory).padStart(7),
      f1(d.total).padStart(6),
      '|         ',
      f1(p.images).padStart(6),
      f1(p.fdinfo).padStart(7),
      f1(p.openFds).padStart(9),
      f1(p.total).padStart(6),
      '|',
      f2((d.files * 1000) / r.fds).padStart(11),
      f2((p.openFds * 1000) / r.fds).padStart(11),
    ].join(' '),
  );
}
for (const line of machine(criu).slice(1)) console.log(`after: ${line}`);
if (rows.some((x) => x.error)) process.exitCode = 1;
