/** The `fdckpt leaks`, `preflight` and `capture --cgroup` contracts: exit codes, JSON shape, what is written. */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { readImage } from '../../src/agent/image/index.js';
import { isFrozen } from '../../src/agent/cgroup/freeze.js';
import { resolveCgroup } from '../../src/agent/cgroup/cgroup.js';
import { fdckpt } from '../support/cli.js';
import { startLeakPair, type LeakPair } from '../support/leakpair.js';
import { destroyCgroup, killAll, makeCgroup, startPython } from '../support/cgtest.js';

let pair: LeakPair;
beforeAll(async () => {
  pair = await startLeakPair();
});
afterAll(async () => {
  await pair.stop();
});

interface LeaksJson {
  leaks: {
    object: { type: string; id: string };
    inside: { pid: number; fd: number };
    outside: { pid: number; comm: string; cgroup: string };
  }[];
}

describe('fdckpt leaks', () => {
  test('exits 3 and prints the contract JSON when leaks exist', () => {
    const r = fdckpt('leaks', '--cgroup', pair.podDir, '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(3);
    const json = JSON.parse(r.stdout) as LeaksJson;
    expect(json.leaks).toHaveLength(7);
    const pipe = json.leaks.find((l) => l.inside.fd === pair.inside.pipe_r)!;
    expect(pipe.object).toEqual({ type: 'pipe', id: expect.stringMatching(/^pipe:\[\d+\]$/) as unknown });
    expect(pipe.inside.pid).toBe(pair.child);
    expect(pipe.outside).toMatchObject({
      pid: pair.outside.pid,
      comm: 'python3',
      cgroup: expect.stringMatching(/^\/fdckpt-test-/) as unknown,
    });
  });

  test('prints one line per leak for people', () => {
    const r = fdckpt('leaks', '--cgroup', pair.podDir);
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(
      /^leak: pipe:\[\d+\] \(pipe, other end of pipe\): inside pid \d+ fd \d+ \(python3\) <-> outside pid \d+ fd \d+ \(python3, \/fdckpt-test-\w+\)$/m,
    );
    expect(r.stdout).toMatch(/^7 leak\(s\), \d+ note\(s\); scanned \d+ processes, \d+ fds in \d+ ms$/m);
  });

  test('exits 0 for a cgroup with no leak, 2 on usage errors', async () => {
    const dir = makeCgroup('v2');
    const clean = await startPython('import time\nready({})\ntime.sleep(3600)\n', dir);
    try {
      const r = fdckpt('leaks', '--cgroup', dir, '--json');
      expect(r.status).toBe(0);
      expect((JSON.parse(r.stdout) as LeaksJson).leaks).toEqual([]);
      expect(fdckpt('preflight', '--cgroup', dir).stdout).toBe(readyLines(clean.pid));
    } finally {
      await killAll([clean]);
      await destroyCgroup(dir);
    }
    expect(fdckpt('leaks').status).toBe(2);
    expect(fdckpt('leaks', '--cgroup', '/no-such-cgroup-fdckpt').stderr).toMatch(/no such cgroup/);
    expect(fdckpt('leaks', '--cgroup', pair.podDir, '--bogus', 'x').stderr).toMatch(/unknown option --bogus/);
  });
});

describe('fdckpt leaks for people', () => {
  test('prints every leak but at most 20 notes, with a count of the rest (--json has all)', async () => {
    // 25 outside processes open the pod's file independently: 25 notes (not leaks).
    const dir = makeCgroup('v2');
    const path = join(pair.tmp, 'notes.txt');
    writeFileSync(path, 'x');
    const hold = `f = open(${JSON.stringify(path)})\nready({})\nimport time\ntime.sleep(3600)\n`;
    const inside = await startPython(hold, dir);
    const outside = await Promise.all(Array.from({ length: 25 }, () => startPython(hold)));
    try {
      const r = fdckpt('leaks', '--cgroup', dir);
      expect(r.status).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines.filter((l) => l.startsWith('note: ') && l.includes('notes.txt'))).toHaveLength(20);
      expect(lines).toContainEqual(
        expect.stringMatching(/^\.\.\. \d+ more note\(s\); --json lists them all$/),
      );
      const json = JSON.parse(fdckpt('leaks', '--cgroup', dir, '--json').stdout) as {
        notes: { object: { id: string } }[];
      };
      expect(json.notes.filter((n) => JSON.stringify(n).includes('notes.txt')).length).toBeGreaterThanOrEqual(
        25,
      );
    } finally {
      await killAll([inside, ...outside]);
      await destroyCgroup(dir);
    }
  });
});

function readyLines(pid: number): string {
  return (
    [0, 1, 2].map((fd) => `restorable  pid ${pid} fd ${fd} regular /dev/null\n`).join('') +
    'ready: 3 restorable\n'
  );
}

describe('fdckpt preflight', () => {
  test('classifies every fd and exits 3 when not ready', () => {
    const r = fdckpt('preflight', '--cgroup', pair.podDir, '--json');
    expect(r.status).toBe(3);
    const json = JSON.parse(r.stdout) as {
      ready: boolean;
      fds: { pid: number; fd: number; class: string }[];
    };
    expect(json.ready).toBe(false);
    const cls = (fd: number): string | undefined => json.fds.find((v) => v.fd === fd)?.class;
    expect(cls(pair.inside.pipe_r!)).toBe('leaked');
    expect(cls(pair.inside.indep!)).toBe('restorable');
    expect(cls(pair.inside.epoll!)).toBe('leaked');
    const text = fdckpt('preflight', '--cgroup', pair.podDir);
    expect(text.stdout.split('\n')[0]).toMatch(/^leaked /);
    expect(text.stdout).toMatch(/^not ready: 6 leaked, .*restorable$/m);
  });
});

describe('fdckpt capture --cgroup', () => {
  test('refuses under the default policy, naming every reason in one pass; writes nothing, leaves it thawed', () => {
    const out = join(pair.tmp, 'fail.fdimg');
    const r = fdckpt('capture', '--cgroup', pair.podDir, '--output', out);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/^leak: /m);
    expect(r.stderr).toMatch(/7 leak\(s\) across the boundary of .*; nothing written$/m);
    // The leaks did not hide the fds that would be refused anyway: the pty's slave and
    // the connected socket, each named with its pid, fd and reason, on the same run.
    const refused = /^fdckpt capture: (\d+) fds cannot be checkpointed: (.*)$/m.exec(r.stderr);
    expect(refused?.[1]).toBe('2');
    expect(refused?.[2]).toMatch(
      new RegExp(`pid ${pair.child} fd ${pair.inside['slave']} \\(/dev/pts/\\d+\\): .+`),
    );
    expect(refused?.[2]).toMatch(
      new RegExp(`pid ${pair.child} fd ${pair.inside['sock_in']} \\(socket:\\[\\d+\\]\\): .+`),
    );
    expect(existsSync(out)).toBe(false);
    expect(isFrozen(resolveCgroup(pair.podDir))).toBe(false);
  });

  test('under warn, prints the leaks and refuses the unrestorable fds; with them ignored writes the image', async () => {
    const out = join(pair.tmp, 'warn.fdimg');
    const refused = fdckpt('capture', '--cgroup', pair.podDir, '--output', out, '--leak-policy', 'warn');
    expect(refused.status).toBe(3);
    expect(refused.stderr).toMatch(/^warning: leak: /m);
    expect(refused.stderr).toMatch(/cannot be checkpointed/);
    const r = fdckpt(
      'capture',
      '--cgroup',
      pair.podDir,
      '--output',
      out,
      '--leak-policy',
      'ignore',
      '--ignore-type',
      'socket',
      '--ignore-type',
      'tty',
      '--leave-frozen',
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /^captured 1 process\(es\), \d+ fds, \d+ open files from cgroup \/fdckpt-test-\w+ in [\d.]+ ms \(frozen [\d.]+ ms, left frozen; unchecked leak\(s\)\)/,
    );
    const cg = resolveCgroup(pair.podDir);
    expect(isFrozen(cg)).toBe(true);
    expect(readFileSync(join(pair.podDir, 'cgroup.events'), 'utf8')).toMatch(/frozen 1/);
    const cp = await readImage(out);
    expect(cp.processes.map((p) => p.pid)).toEqual([pair.child]);
  });

  test('refuses a cgroup that contains fdckpt itself instead of freezing itself', async () => {
    const dir = makeCgroup('v2');
    try {
      const bin = fileURLToPath(new URL('../../bin/fdckpt.js', import.meta.url));
      const r = spawnSync(
        'sh',
        [
          '-c',
          `echo $$ > ${dir}/cgroup.procs && exec "$0" "$@"`,
          process.execPath,
          bin,
          'capture',
          '--cgroup',
          dir,
          '--output',
          join(pair.tmp, 'self.fdimg'),
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/contains fdckpt itself \(pid \d+\): refusing to capture it/);
      expect(isFrozen(resolveCgroup(dir))).toBe(false);
    } finally {
      await destroyCgroup(dir);
    }
  });

  test('--stop: thawed, the captured process stopped', async () => {
    const out = join(pair.tmp, 'stop.fdimg');
    writeFileSync(join(pair.podDir, 'cgroup.freeze'), '0'); // the previous test left it frozen
    const r = fdckpt(
      'capture',
      '--cgroup',
      pair.podDir,
      '--output',
      out,
      '--leak-policy',
      'ignore',
      '--ignore-type',
      'socket',
      '--ignore-type',
      'tty',
      '--stop',
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/processes stopped/);
    expect(isFrozen(resolveCgroup(pair.podDir))).toBe(false);
    while (!/^State:\s+T/m.test(readFileSync(`/proc/${pair.child}/status`, 'utf8'))) await sleep(1);
    process.kill(pair.child, 'SIGCONT');
    expect(
      fdckpt('capture', '--cgroup', pair.podDir, '--output', out, '--stop', '--leave-frozen').status,
    ).toBe(2);
  });

  test('rejects a bad policy', () => {
    const r = fdckpt('capture', '--cgroup', pair.podDir, '--output', '/tmp/x', '--leak-policy', 'maybe');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--leak-policy must be fail, warn or ignore/);
  });
});
