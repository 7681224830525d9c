import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { childrenCpu } from '../../src/agent/linux/rusage.js';
import { isChildSubreaper, reap, setChildSubreaper } from '../../src/agent/linux/subreaper.js';
import type { WaitStatus } from '../../src/agent/linux/wait.js';

function ppid(pid: number): number {
  const m = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]);
}

async function reapWithin(pid: number, ms: number): Promise<WaitStatus> {
  for (let waited = 0; waited < ms; waited += 10) {
    const st = reap(pid);
    if (st) return st;
    await sleep(10);
  }
  throw new Error(`pid ${pid} was not reaped within ${ms} ms`);
}

describe('child subreaper', () => {
  test('an orphaned grandchild is reparented to us and reaped with its signal', async () => {
    setChildSubreaper();
    expect(isChildSubreaper()).toBe(true);
    // sh starts sleep in the background and exits at once: sleep is orphaned.
    const orphan = Number(
      execFileSync('sh', ['-c', 'sleep 60 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }),
    );
    try {
      expect(ppid(orphan)).toBe(process.pid);
      expect(reap(orphan)).toBeNull();
    } finally {
      process.kill(orphan, 'SIGKILL');
    }
    expect(await reapWithin(orphan, 5000)).toEqual({ kind: 'signaled', signal: 9 });
  });

  test('an exit code is reported, and a pid that is not our child is ECHILD', async () => {
    setChildSubreaper();
    const orphan = Number(
      execFileSync('sh', ['-c', '(sleep 0.2; exit 3) >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }),
    );
    expect(await reapWithin(orphan, 5000)).toEqual({ kind: 'exited', code: 3 });
    expect(() => reap(1)).toThrow('waitpid(pid 1): ECHILD');
  });
});

describe('childrenCpu', () => {
  test("a reaped child's CPU time is added to RUSAGE_CHILDREN", () => {
    const before = childrenCpu();
    execFileSync('sh', ['-c', 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done']);
    const after = childrenCpu();
    expect(after.userMs + after.sysMs).toBeGreaterThan(before.userMs + before.sysMs);
    expect(after.userMs).toBeGreaterThanOrEqual(before.userMs);
    expect(after.sysMs).toBeGreaterThanOrEqual(before.sysMs);
  });
});
