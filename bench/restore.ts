/**
 * bench/restore: µs per fd to replay a table of N distinct regular files
 * (mixed access modes, O_APPEND/O_NONBLOCK, offsets, cloexec bits, every 10th
 * fd a dup of the previous file) into a fresh process, batched (the stub runs
 * every syscall inside the target) and unbatched (one ptrace round trip per
 * syscall). "inject" is exec stop → detach; "total" adds planning, validation
 * and launching the held process.  Run: npm run bench:restore
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { O, type Checkpoint, type FdRecord, type FileRecord } from '../src/agent/model.js';
import { restore } from '../src/agent/replay/index.js';

const SIZES = [100, 1000, 10000, 19000];
const RUNS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function tableOfFiles(dir: string, n: number): Checkpoint {
  const files: FileRecord[] = [];
  const fds: FdRecord[] = [];
  const modes = [O.RDONLY, O.RDWR, O.WRONLY | O.APPEND, O.RDWR | O.NONBLOCK];
  for (let fd = 0; fd < n; fd++) {
    if (fd % 10 === 9) {
      fds.push({ fd, file: files[files.length - 1]!.objref, cloexec: true });
      continue;
    }
    const p = path.join(dir, `f${fd}`);
    if (!fs.existsSync(p)) fs.writeFileSync(p, 'z'.repeat(fd % 97));
    const objref = files.length + 1;
    files.push({
      objref,
      type: 'regular',
      flags: modes[fd % 4]!,
      pos: fd % 97,
      path: p,
      mntId: 0,
      dev: 0,
      ino: 0,
      mode: 0o100600,
      data: { type: 'regular', size: fd % 97 },
    });
    fds.push({ fd, file: objref, cloexec: fd % 3 === 0 });
  }
  for (const f of files) f.objref += 1;
  for (const e of fds) e.file += 1;
  return {
    header: { node: os.hostname(), source: 'bench', time: Date.now(), kernel: os.release(), tool: 'bench' },
    processes: [{ pid: 1, tgid: 1, comm: 'bench', argv: [], cwd: '/', table: 1 }],
    tables: [{ objref: 1, fds }],
    files,
  };
}

interface Run {
  plan: number;
  launch: number;
  run: number;
  /** Of inject: the check that each by-path fd is the file validation saw. */
  verify: number;
  inject: number;
  total: number;
  /** CPU time of the restorer and the target together: less sensitive to a loaded machine than wall time. */
  cpu: number;
  steps: number;
}

/** ns a task has spent on a CPU (/proc/PID/schedstat, first field). */
function onCpuNs(pid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
}

async function once(cp: Checkpoint, batch: boolean): Promise<Run> {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const r = await restore(cp, ['sleep', '600'], { stdio: 'ignore', batch });
  const c1 = process.cpuUsage(c0);
  const total = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = (c1.user + c1.system) / 1000 + onCpuNs(r.pid) / 1e6;
  process.kill(r.pid, 'SIGKILL');
  await r.exit;
  const t = r.timings;
  return {
    plan: t.plan,
    launch: t.launch + t.exec,
    run: r.stats.runMs,
    verify: r.stats.verifyMs,
    inject: t.inject,
    total,
    cpu,
    steps: r.stats.steps,
  };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-restore-'));
try {
  console.log(
    `bench/restore on ${os.cpus()[0]?.model ?? 'unknown cpu'} (${os.cpus().length} cpus), ${os.release()}`,
  );
  console.log(`${new Date().toISOString()}, median of ${RUNS} runs, times in ms, per-fd in µs`);
  console.log(
    'plan = validate+plan; launch = spawn+exec; run = the syscalls in the target; verify = opened fds checked;',
  );
  console.log('inject = exec stop→detach (run and verify included);');
  console.log('cpu = CPU time of restorer + target over the whole restore (wall times suffer from load)');
  console.log(
    'fds     mode       steps     plan   launch      run   verify   inject   µs/fd    total    µs/fd      cpu    µs/fd',
  );
  for (const n of SIZES) {
    const cp = tableOfFiles(dir, n);
    for (const batch of [true, false]) {
      const runs: Run[] = [];
      for (let i = 0; i < RUNS; i++) runs.push(await once(cp, batch));
      const m = (k: keyof Run): number => median(runs.map((r) => r[k]));
      const inject = m('inject');
      const total = m('total');
      console.log(
        [
          String(n).padEnd(7),
          (batch ? 'batched' : 'unbatched').padEnd(10),
          String(runs[0]!.steps).padStart(6),
          m('plan').toFixed(1).padStart(8),
          m('launch').toFixed(1).padStart(8),
          m('run').toFixed(1).padStart(8),
          m('verify').toFixed(1).padStart(8),
          inject.toFixed(1).padStart(8),
          ((inject * 1000) / n).toFixed(2).padStart(7),
          total.toFixed(1).padStart(8),
          ((total * 1000) / n).toFixed(2).padStart(8),
          m('cpu').toFixed(1).padStart(8),
          ((m('cpu') * 1000) / n).toFixed(2).padStart(8),
        ].join(' '),
      );
    }
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
