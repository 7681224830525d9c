/**
 * bench/criu/versus: fdckpt and CRIU on the same processes in one run, interleaved,
 * with the kernel's floor from the same run (issue 14). Only ratios from one run are
 * results; this prints them.
 *
 * Workload (test/fixtures/fdproc.py mixed): N fds of distinct files in four access
 * modes (O_APPEND, O_NONBLOCK among them) at offsets, every tenth fd a dup, every
 * third close-on-exec, one pipe with data. N > 20 000 is split over 6 processes (the
 * hard RLIMIT_NOFILE here is 20 000): fdckpt captures them in one command, CRIU dumps
 * each (one tree per dump) and the figure is the sum.
 *
 * Each rep runs, in an order that rotates from rep to rep:
 *   capture: `fdckpt capture --pid P... --output F --json` (whole CLI, wall; its own
 *     "ms" and frozenMs; peak RSS by /usr/bin/time) | `criu dump --leave-running`
 *     (wall; stats' frozen_time) | the C floor (bench/floors/capture-floor.c: /proc
 *     pass = readdir + readlink + fdinfo, getfd pass = pidfd_getfd + F_GETFL + lseek +
 *     fstat + close);
 *   restore: `fdckpt restore --image F --pid P --fds all -- /bin/true` (whole CLI:
 *     image read, checks, plan, the held process, injection) | `criu restore -d` of a
 *     dump taken (and the process killed) just before, not timed.
 * Also `node -e 0` and `fdckpt --help` (start-up).
 *
 * Run: npm run bench:criu   (root; env BENCH_REPS=7, CRIU_N=100,1000,10000,19000,100000)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setChildSubreaper } from '../../src/agent/linux/subreaper.js';
import { mustSucceed, readStats, runCriu } from './criu-run.js';
import {
  killAllOnSignal,
  killAndReap,
  removeDir,
  removeFixtureDir,
  startDetached,
  trackDir,
  waitGone,
  type DetachedFixture,
} from './detached-fixture.js';

const reps = Number(process.env.BENCH_REPS ?? 7);
const sizes = (process.env.CRIU_N ?? '100,1000,10000,19000,100000').split(',').map(Number);
const PROCS_ABOVE = 20000;
const SPLIT = 6;

const root = [
  fileURLToPath(new URL('../..', import.meta.url)),
  fileURLToPath(new URL('../../..', import.meta.url)),
].find((d) => existsSync(join(d, 'bin', 'fdckpt.js')));
if (!root) throw new Error('bin/fdckpt.js not found above bench/criu');
const cli = join(root, 'bin', 'fdckpt.js');
if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error(`${root}: run npm run build first`);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
};
const min = (xs: number[]): number => (xs.length ? Math.min(...xs) : NaN);

interface Timed {
  ms: number;
  stdout: string;
  /** Peak RSS in KiB (/usr/bin/time %M). */
  rssKb: number;
}

/** Runs a command under /usr/bin/time; throws with its stderr when it fails. */
function timed(cmd: string, args: string[]): Timed {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'RSS_KB %M', cmd, ...args], { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr.slice(-2000)}`);
  const rss = /RSS_KB (\d+)/.exec(r.stderr);
  return { ms, stdout: r.stdout, rssKb: rss ? Number(rss[1]) : NaN };
}

interface Row {
  n: number;
  procs: number;
  fds: number;
  fdckptCapture: number[];
  fdckptEngine: number[];
  fdckptFrozen: number[];
  fdckptRssKb: number[];
  criuDump: number[];
  criuFrozen: number[];
  floorProc: number[];
  floorGetfd: number[];
  fdckptRestore: number[];
  criuRestore: number[];
  error?: string;
}

function floorBinary(): string {
  const out = join(mkdtempSync(join(tmpdir(), 'fdckpt-floor-')), 'capture-floor');
  trackDir(join(out, '..'));
  execFileSync('cc', ['-O2', '-o', out, join(root!, 'bench', 'floors', 'capture-floor.c')]);
  return out;
}

/** One rep's three capture figures, in the rep's order. */
function captureRep(
  rep: number,
  criu: string,
  floor: string,
  fxs: DetachedFixture[],
  row: Row,
  dir: string,
): void {
  const pids = fxs.map((f) => String(f.pid));
  const steps = [
    () => {
      const image = join(dir, `fdckpt-${rep}.img`);
      const r = timed(process.execPath, [
        cli,
        'capture',
        ...pids.flatMap((p) => ['--pid', p]),
        '--output',
        image,
        '--json',
      ]);
      const j = JSON.parse(r.stdout) as { ms: number; frozenMs: number; fds: number };
      if (j.fds !== row.fds) throw new Error(`fdckpt captured ${j.fds} fds, /proc listed ${row.fds}`);
      row.fdckptCapture.push(r.ms);
      row.fdckptEngine.push(j.ms);
      row.fdckptFrozen.push(j.frozenMs);
      row.fdckptRssKb.push(r.rssKb);
    },
    () => {
      let ms = 0;
      let frozen = 0;
      for (const pid of pids) {
        const d = join(dir, `criu-lr-${rep}-${pid}`);
        const r = runCriu(criu, ['dump', '-t', pid, '-D', mk(d), '-o', 'dump.log', '--leave-running']);
        mustSucceed(`dump --leave-running N=${row.n}`, r, join(d, 'dump.log'));
        ms += r.ms;
        frozen += (readStats(d, 'dump')?.frozen_time ?? NaN) / 1000;
        removeDir(d);
      }
      row.criuDump.push(ms);
      row.criuFrozen.push(frozen);
    },
    () => {
      const out = execFileSync(floor, pids, { encoding: 'utf8' });
      const m = /fds (\d+) proc_ms ([\d.]+) getfd_ms ([\d.]+)/.exec(out);
      if (!m) throw new Error(`capture-floor: ${out}`);
      row.floorProc.push(Number(m[2]));
      row.floorGetfd.push(Number(m[3]));
    },
  ];
  for (let i = 0; i < steps.length; i++) steps[(i + rep) % steps.length]!();
}

function mk(d: string): string {
  execFileSync('mkdir', ['-p', d]);
  trackDir(d);
  return d;
}

/** One rep of the restores: fdckpt from the first capture's image; CRIU from a dump taken just before. */
async function restoreRep(
  rep: number,
  criu: string,
  fxs: DetachedFixture[],
  row: Row,
  dir: string,
): Promise<void> {
  const image = join(dir, 'fdckpt-0.img');
  const fdckpt = (): void => {
    let ms = 0;
    for (const fx of fxs)
      ms += timed(process.execPath, [
        cli,
        'restore',
        '--image',
        image,
        '--pid',
        String(fx.pid),
        '--fds',
        'all',
        '--',
        '/bin/true',
      ]).ms;
    row.fdckptRestore.push(ms);
  };
  const criuCycle = async (): Promise<void> => {
    let ms = 0;
    for (const fx of fxs) {
      const d = mk(join(dir, `criu-${rep}-${fx.pid}`));
      mustSucceed(
        `dump N=${row.n}`,
        runCriu(criu, ['dump', '-t', String(fx.pid), '-D', d, '-o', 'dump.log']),
        join(d, 'dump.log'),
      );
      await waitGone(fx.pid);
      const r = runCriu(criu, ['restore', '-d', '-D', d, '-o', 'restore.log']);
      mustSucceed(`restore -d N=${row.n}`, r, join(d, 'restore.log'));
      ms += r.ms;
      removeDir(d);
    }
    row.criuRestore.push(ms);
  };
  if (rep % 2 === 0) {
    fdckpt();
    await criuCycle();
  } else {
    await criuCycle();
    fdckpt();
  }
}

async function measure(criu: string, floor: string, n: number): Promise<Row> {
  const procs = n > PROCS_ABOVE ? SPLIT : 1;
  const row: Row = {
    n,
    procs,
    fds: 0,
    fdckptCapture: [],
    fdckptEngine: [],
    fdckptFrozen: [],
    fdckptRssKb: [],
    criuDump: [],
    criuFrozen: [],
    floorProc: [],
    floorGetfd: [],
    fdckptRestore: [],
    criuRestore: [],
  };
  const fxs: DetachedFixture[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'fdckpt-versus-'));
  trackDir(dir);
  try {
    for (let i = 0; i < procs; i++) fxs.push(await startDetached(Math.ceil(n / procs), 'mixed'));
    row.fds = fxs.reduce((s, f) => s + f.fds, 0);
    for (let rep = 0; rep < reps; rep++) captureRep(rep, criu, floor, fxs, row, dir);
    for (let rep = 0; rep < reps; rep++) await restoreRep(rep, criu, fxs, row, dir);
  } catch (err) {
    row.error = err instanceof Error ? err.message : String(err);
  } finally {
    for (const fx of fxs) {
      await killAndReap(fx.pid);
      removeFixtureDir(fx);
    }
    removeDir(dir);
  }
  return row;
}

const f0 = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '-');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');
const mm = (xs: number[]): string => `${f0(min(xs))}/${f0(median(xs))}`;
const ratio = (a: number[], b: number[]): string => f2(median(a) / median(b));

const ensure = join(root, 'bench', 'criu', 'ensure-criu.sh');
const criu = execFileSync('sh', [ensure], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
setChildSubreaper();
killAllOnSignal();
const floor = floorBinary();
const version = execFileSync(criu, ['--version'], { encoding: 'utf8' }).split('\n')[0];
const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '?';
const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
console.log(
  `date ${new Date().toISOString()}  nproc ${availableParallelism()}  kernel ${release()}  cpu ${cpu}`,
);
console.log(`load at start ${load()}  ${criu} ${version}  node ${process.version}  reps ${reps}`);

const startup = { node: [] as number[], help: [] as number[] };
for (let i = 0; i < reps; i++) {
  startup.node.push(timed(process.execPath, ['-e', '0']).ms);
  startup.help.push(timed(process.execPath, [cli, '--help']).ms);
}

const rows: Row[] = [];
for (const n of sizes) {
  const row = await measure(criu, floor, n);
  rows.push(row);
  console.log(
    row.error ? `N=${n}: FAILED: ${row.error}` : `N=${n} (${row.fds} fds in ${row.procs} process(es)) done`,
  );
}
console.log(`load at end ${load()}`);

console.log(`\nms, min/median of ${reps}, interleaved; ratios are median/median of this run`);
console.log(
  'N        fds     fdckpt capture  engine  frozen  CRIU dump  frozen  floor proc+getfd  capture/CRIU  engine/CRIU  capture/floor  engine/floor  peak RSS MB',
);
for (const r of rows.filter((x) => !x.error)) {
  const floorSum = r.floorProc.map((p, i) => p + r.floorGetfd[i]!);
  console.log(
    [
      String(r.n).padEnd(8),
      String(r.fds).padEnd(7),
      mm(r.fdckptCapture).padEnd(15),
      mm(r.fdckptEngine).padEnd(7),
      mm(r.fdckptFrozen).padEnd(7),
      mm(r.criuDump).padEnd(10),
      mm(r.criuFrozen).padEnd(7),
      `${mm(r.floorProc)}+${mm(r.floorGetfd)}`.padEnd(17),
      ratio(r.fdckptCapture, r.criuDump).padEnd(13),
      ratio(r.fdckptEngine, r.criuDump).padEnd(12),
      ratio(r.fdckptCapture, floorSum).padEnd(14),
      ratio(r.fdckptEngine, floorSum).padEnd(13),
      f0(median(r.fdckptRssKb) / 1024),
    ].join(' '),
  );
}
console.log('\nN        fds     fdckpt restore  CRIU restore -d  restore/CRIU');
for (const r of rows.filter((x) => !x.error)) {
  console.log(
    [
      String(r.n).padEnd(8),
      String(r.fds).padEnd(7),
      mm(r.fdckptRestore).padEnd(15),
      mm(r.criuRestore).padEnd(16),
      ratio(r.fdckptRestore, r.criuRestore),
    ].join(' '),
  );
}
console.log(
  `\nstart-up: node -e 0 ${mm(startup.node)} ms, fdckpt --help ${mm(startup.help)} ms (fdckpt's own: ${f0(median(startup.help) - median(startup.node))} ms)`,
);
