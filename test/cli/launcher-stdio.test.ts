/**
 * The stdio a process was started with is held at its other end by its
 * launcher (the runtime's shim on a node; here, this test process). leaks,
 * preflight and capture apply the operator's rule: that edge is a note, not a
 * leak, and any other holder of the same pipe is still a leak.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { destroyCgroup, makeCgroup, PYTHON } from '../support/cgtest.js';
import { fdckpt } from '../support/cli.js';
import { until } from '../support/until.js';

interface LeaksJson {
  leaks: { inside: { pid: number; fd: number }; outside: { pid: number; comm: string } }[];
  notes: { kind: string; inside: { pid: number; fd: number }; outside: { pid: number }; detail: string }[];
}

let dir: string;
let launched: ChildProcess;
let other: ChildProcess;

beforeAll(async () => {
  dir = makeCgroup('v2');
  // Stdio stays the pipes this process holds: it is the launcher, as a shim is.
  const script = 'import os, time\nos.closerange(3, 65536)\nprint("ready", flush=True)\ntime.sleep(3600)\n';
  launched = spawn('sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec ${PYTHON} -c "$1"`, 'sh', script], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stdout = launched.stdout!;
  await new Promise<void>((resolve, reject) => {
    stdout.once('data', () => resolve());
    launched.once('exit', (code) => reject(new Error(`launched script exited (${code})`)));
  });
  // A second holder of the stderr pipe's read end, outside the cgroup and not the launcher.
  other = spawn('sleep', ['3600'], { stdio: [launched.stderr as Readable, 'ignore', 'ignore'] });
  await until('the other holder runs', () => Promise.resolve(other.pid), 5_000);
});

afterAll(async () => {
  for (const c of [other, launched]) c?.kill('SIGKILL');
  await until(
    'the launched script is gone',
    () => Promise.resolve(launched.exitCode ?? launched.signalCode ?? undefined),
    5_000,
  );
  await destroyCgroup(dir);
});

describe('the launcher stdio rule', () => {
  test('leaks: the launcher end of fds 0-2 is a note; another holder of the same pipe is a leak', () => {
    const r = fdckpt('leaks', '--cgroup', dir, '--json');
    expect(r.stderr).toBe('');
    const json = JSON.parse(r.stdout) as LeaksJson;
    const pid = launched.pid!;
    expect(json.leaks.map((l) => [l.inside.pid, l.inside.fd, l.outside.pid])).toEqual([[pid, 2, other.pid]]);
    expect(r.status).toBe(3);
    const notes = json.notes.filter((n) => n.kind === 'launcher-stdio');
    expect(notes.map((n) => [n.inside.fd, n.outside.pid]).sort()).toEqual([
      [0, process.pid],
      [1, process.pid],
      [2, process.pid],
    ]);
    expect(notes[0]!.detail).toMatch(/is the stdio that pid \d+ \(\S+\) started the process with/);
  });

  test('preflight counts the same leaks as leaks does', () => {
    const r = fdckpt('preflight', '--cgroup', dir, '--json');
    const report = JSON.parse(r.stdout) as { counts: Record<string, number> };
    expect(report.counts.leaked).toBe(1);
    expect(r.status).toBe(3);
  });
});
