/**
 * `capture --pid` stops every thread of its targets (ptrace) while it reads their
 * tables, and lets them run again on every path: success, a refused fd, a traced
 * target refused, the CLI SIGKILLed mid-capture. Real python targets.
 */
import { afterEach, describe, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { readImage } from '../../src/agent/image/index.js';
import { fdckpt } from '../support/cli.js';
import { killAll, startPython, type Started } from '../support/cgtest.js';

const bin = fileURLToPath(new URL('../../bin/fdckpt.js', import.meta.url));
const started: Started[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await killAll(started);
  for (const c of cleanups.splice(0)) c();
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fdckpt-pidfreeze-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The one-letter state of each task's /proc/PID/task/TID/stat (after the parenthesised comm). */
function statesOf(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  });
}

function tracerOf(pid: number): number {
  return Number(/^TracerPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

/** Running again: no tracer left and no thread in a stop (t: traced, T: stopped). */
function expectRunning(pid: number): void {
  expect(tracerOf(pid)).toBe(0);
  const states = statesOf(pid);
  expect(states.length).toBeGreaterThan(0);
  for (const s of states) expect(s).not.toMatch(/[tT]/);
}

/**
 * A second thread creates a pipe (both ends at once: pipe(2)) and closes both
 * (at once: close_range(2)) in a tight loop, so at every instant both ends of
 * one pipe are open or neither is. A capture that reads a running table sees
 * one end, or ends of two different pipes; a stopped table never. 300 other fds
 * make each capture long enough to be caught; the main thread only sleeps
 * (every thread must be stopped, not just the one pid given).
 */
const CHURN = `
import ctypes, os, threading, time
libc = ctypes.CDLL(None, use_errno=True)
keep = [os.open("/dev/null", os.O_RDONLY) for _ in range(300)]
def churn():
    while True:
        r, w = os.pipe()
        if libc.syscall(436, min(r, w), max(r, w), 0) != 0:  # close_range
            os._exit(7)
threading.Thread(target=churn, daemon=True).start()
ready({})
while True:
    time.sleep(1)
`;

/**
 * Captures the churner `times` times, or until `stopAtTorn` captures saw a torn pipe or
 * failed on a vanished fd: how many did.
 */
async function torn(
  pid: number,
  dir: string,
  extra: string[],
  times: number,
  stopAtTorn = Infinity,
): Promise<{ torn: number; frozen: (number | null)[] }> {
  let count = 0;
  const frozen: (number | null)[] = [];
  for (let i = 0; i < times && count < stopAtTorn; i++) {
    const out = join(dir, `c${i}.fdimg`);
    const r = fdckpt('capture', '--pid', String(pid), '--output', out, '--json', ...extra);
    if (r.status !== 0) {
      // Without freezing an fd can vanish between listing and reading it.
      expect(r.stderr).toMatch(/closed during capture/);
      count++;
      continue;
    }
    frozen.push((JSON.parse(r.stdout) as { frozenMs: number | null }).frozenMs);
    const pipes = (await readImage(out)).files.filter((f) => f.type === 'pipe').map((f) => f.path);
    const whole = pipes.length === 0 || (pipes.length === 2 && pipes[0] === pipes[1]);
    if (!whole) count++;
  }
  return { torn: count, frozen };
}

describe('capture --pid freezes its targets', () => {
  test('a churning table is captured all-or-none, and runs again afterwards', async () => {
    const dir = scratch();
    const t = await startPython(CHURN);
    started.push(t);
    const frozen = await torn(t.pid, dir, [], 5);
    expect(frozen.torn).toBe(0);
    expect(frozen.frozen).toHaveLength(5);
    for (const ms of frozen.frozen) expect(ms).toBeGreaterThan(0);
    expectRunning(t.pid);
    // The same check without freezing sees a torn table, so the check can fail. A running
    // capture tears about one time in four here (the pipe is open half the time, and the
    // table is listed milliseconds before its last fds are read), so up to 40 captures
    // until the first tear: the chance of none is below 1e-4.
    const running = await torn(t.pid, dir, ['--no-freeze'], 40, 1);
    expect(running.torn).toBe(1);
    for (const ms of running.frozen) expect(ms).toBeNull();
  }, 120_000);

  test('a refused fd: exit 3, and the target runs again', async () => {
    const dir = scratch();
    const t = await startPython(`
import os
fd = os.open("${dir}/gone", os.O_CREAT | os.O_RDWR)
os.unlink("${dir}/gone")
ready({"fd": fd})
import time
while True:
    time.sleep(1)
`);
    started.push(t);
    const r = fdckpt('capture', '--pid', String(t.pid), '--output', join(dir, 'x.fdimg'));
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('the file was unlinked');
    expectRunning(t.pid);
  });

  test('a target already traced is refused naming it and its tracer; the tracer keeps it', async () => {
    const dir = scratch();
    const t = await startPython('ready({})\nimport time\nwhile True:\n    time.sleep(1)\n');
    started.push(t);
    const strace = spawn('strace', ['-q', '-p', String(t.pid), '-o', '/dev/null'], { stdio: 'ignore' });
    cleanups.push(() => strace.kill('SIGKILL'));
    while (tracerOf(t.pid) === 0) await sleep(10);
    const r = fdckpt('capture', '--pid', String(t.pid), '--output', join(dir, 'x.fdimg'));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`pid ${t.pid} is already traced by pid ${strace.pid} (strace)`);
    expect(tracerOf(t.pid)).toBe(strace.pid);
    // --no-freeze reads it anyway (the tracer may be the reason to).
    const ok = fdckpt('capture', '--pid', String(t.pid), '--output', join(dir, 'x.fdimg'), '--no-freeze');
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toContain('(not frozen)');
  });

  test.each(['SIGKILL', 'SIGTERM', 'SIGINT'] as const)(
    'the CLI sent %s while its target is stopped: the target runs again',
    async (signal) => {
      const dir = scratch();
      // Enough fds that the capture is still reading when the test sees the target traced.
      const t = await startPython(`
import os, resource, time
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
keep = [os.pipe() for _ in range(9000)]
ready({})
while True:
    time.sleep(1)
`);
      started.push(t);
      const cli = spawn(
        process.execPath,
        [bin, 'capture', '--pid', String(t.pid), '--output', join(dir, 'x.fdimg')],
        {
          stdio: 'ignore',
        },
      );
      const exited = new Promise((done) => cli.once('exit', done));
      // PTRACE_SEIZE names the tracer before PTRACE_INTERRUPT has stopped the thread:
      // wait for both, or the signal may come before the target is stopped at all.
      const stopped = (): boolean => tracerOf(t.pid) === cli.pid && statesOf(t.pid).includes('t');
      const deadline = Date.now() + 60_000;
      while (!stopped() && Date.now() < deadline) await sleep(2);
      expect(tracerOf(t.pid)).toBe(cli.pid);
      expect(statesOf(t.pid)).toContain('t');
      // SIGKILL: the kernel detaches a dead tracer's tracees; SIGTERM/SIGINT: the same, or the CLI's own thaw.
      cli.kill(signal);
      await exited;
      for (let i = 0; i < 100 && tracerOf(t.pid) !== 0; i++) await sleep(10);
      expectRunning(t.pid);
    },
    120_000,
  );
});
