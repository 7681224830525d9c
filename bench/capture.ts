/**
 * bench/capture: µs per fd for capture against the floor — the same machine
 * doing only the unavoidable per-fd work (list /proc/PID/fd, readlink, read
 * fdinfo) — on processes holding N distinct files with mixed flags and offsets;
 * and the growth of dedup when n distinct files share one inode (eventfds).
 * Run: npm run bench:capture
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { capture } from '../src/agent/capture/index.js';
import { ProcFdReader } from '../src/agent/linux/procfd.js';
import { startFixture, type Fixture } from '../test/support/fixture.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(fn: () => void): number {
  return measure(fn).wall;
}

/** Wall and CPU (user + system, this process) time of fn, in ms. CPU time is what a loaded machine does not inflate. */
function measure(fn: () => void): { wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

/** The floor as Node's fs does it: list, readlink, read fdinfo. */
function floorFs(pid: number): number {
  let n = 0;
  for (const name of readdirSync(`/proc/${pid}/fd`)) {
    readlinkSync(`/proc/${pid}/fd/${name}`);
    readFileSync(`/proc/${pid}/fdinfo/${name}`, 'latin1');
    n++;
  }
  return n;
}

/** The floor done the fastest way we know (dirfds, direct syscalls) — what capture is compared to. */
function floor(pid: number): number {
  const proc = new ProcFdReader(pid);
  let n = 0;
  try {
    for (const name of readdirSync(`/proc/${pid}/fd`)) {
      const fd = Number(name);
      proc.readlink(fd);
      proc.fdinfo(fd);
      n++;
    }
  } finally {
    proc.close();
  }
  return n;
}

async function withFixture<T>(scenario: string, n: number, fn: (fx: Fixture) => T): Promise<T> {
  const fx = await startFixture([scenario], { FDPROC_MANY: String(n) });
  try {
    return fn(fx);
  } finally {
    await fx.stop();
  }
}

const reps = Number(process.env.BENCH_REPS ?? 7);
console.log(
  `${cpus().length} × ${cpus()[0]?.model ?? '?'}, kernel ${release()}, load ${loadavg()[0]!.toFixed(1)}`,
);
console.log(`capture vs floor, median of ${reps}; wall and CPU (user+sys) ms; ratio = capture/floor`);
console.log(
  'N      fds    fs-floor µs/fd  floor wall  floor cpu  capture wall  capture cpu  cpu µs/fd  ratio wall  ratio cpu',
);
for (const n of [100, 1000, 10000, 19000]) {
  await withFixture('many', n, (fx) => {
    const fds = floor(fx.pid);
    const fsFloors: number[] = [];
    const floors: { wall: number; cpu: number }[] = [];
    const captures: { wall: number; cpu: number }[] = [];
    for (let i = 0; i < reps; i++) {
      fsFloors.push(time(() => floorFs(fx.pid)));
      floors.push(measure(() => floor(fx.pid)));
      captures.push(measure(() => capture([fx.pid])));
    }
    const fw = median(floors.map((m) => m.wall));
    const fc = median(floors.map((m) => m.cpu));
    const cw = median(captures.map((m) => m.wall));
    const cc = median(captures.map((m) => m.cpu));
    console.log(
      [
        String(n).padEnd(6),
        String(fds).padEnd(6),
        ((median(fsFloors) * 1000) / fds).toFixed(2).padStart(14),
        fw.toFixed(1).padStart(10),
        fc.toFixed(1).padStart(10),
        cw.toFixed(1).padStart(13),
        cc.toFixed(1).padStart(12),
        ((cc * 1000) / fds).toFixed(2).padStart(10),
        (cw / fw).toFixed(2).padStart(11),
        (cc / fc).toFixed(2).padStart(10),
      ].join(' '),
    );
  });
}
console.log(`load at end ${loadavg()[0]!.toFixed(1)}`);

console.log('\ndedup growth: n distinct eventfds in one (dev, ino) bucket');
console.log('n      kcmp calls  n·log2(n)  all pairs    capture ms');
for (const n of [1000, 4000, 16000]) {
  await withFixture('many-eventfds', n, (fx) => {
    let calls = 0;
    const ms = median(
      Array.from({ length: 3 }, () =>
        time(() => {
          calls = capture([fx.pid]).stats.kcmpCalls;
        }),
      ),
    );
    console.log(
      [
        String(n).padEnd(6),
        String(calls).padStart(10),
        String(Math.round(n * Math.log2(n))).padStart(10),
        String((n * (n - 1)) / 2).padStart(11),
        ms.toFixed(1).padStart(12),
      ].join(' '),
    );
  });
}
