/**
 * bench/kcmp: one kcmp(2) call through libc's variadic syscall() (the generic sys()
 * wrapper) against the fixed prototype src/agent/linux/kcmp.ts declares, on two fds of
 * this process, interleaved in rounds. Prints µs per call.
 * Run: npm run bench:kcmp   (BENCH_CALLS, default 200000; BENCH_REPS rounds, default 3)
 */
import { openSync } from 'node:fs';
import { loadavg } from 'node:os';
import { KCMP_FILE, kcmp } from '../src/agent/linux/kcmp.js';
import { sys } from '../src/agent/linux/libc.js';

const calls = Number(process.env['BENCH_CALLS'] ?? 200_000);
const rounds = Number(process.env['BENCH_REPS'] ?? 3);
const a = openSync('/etc/hostname', 'r');
const b = openSync('/etc/hosts', 'r');
const pid = process.pid;

const variadic = (i1: number, i2: number): number =>
  sys(
    'kcmp',
    `pid ${pid} #${i1}, pid ${pid} #${i2}`,
    ['int', pid],
    ['int', pid],
    ['int', KCMP_FILE],
    ['ulong', i1],
    ['ulong', i2],
  );

function perCall(f: () => unknown): number {
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) f();
  return ((performance.now() - t0) / calls) * 1000;
}

process.stdout.write(`kcmp, ${calls} calls per figure, load ${loadavg()[0]!.toFixed(2)}\n`);
for (let r = 1; r <= rounds; r++) {
  const v = perCall(() => variadic(a, b));
  const f = perCall(() => kcmp(pid, pid, KCMP_FILE, a, b));
  process.stdout.write(
    `round ${r}: variadic ${v.toFixed(2)} µs/call, fixed prototype ${f.toFixed(2)} µs/call\n`,
  );
}
