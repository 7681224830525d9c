import { afterEach, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveCgroup, listTasks, cgroupOfPid } from '../../../src/agent/cgroup/cgroup.js';
import { freeze, thaw, isFrozen, thawActiveFreezes, withFrozen } from '../../../src/agent/cgroup/freeze.js';
import { cgroupMounts } from '../../../src/agent/cgroup/mounts.js';
import { destroyCgroup, killAll, makeCgroup, startPython, type Started } from '../../support/cgtest.js';

const THREADS = `
import threading, time, os, json
ev = threading.Event()
ts = [threading.Thread(target=ev.wait, daemon=True) for _ in range(3)]
for t in ts: t.start()
print(json.dumps({"tids": sorted(int(x) for x in os.listdir("/proc/self/task"))}), flush=True)
time.sleep(3600)
`;

const started: Started[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const d of dirs.splice(0)) await destroyCgroup(d);
  await killAll(started);
});

describe('resolveCgroup', () => {
  it('accepts an absolute v2 directory, a relative path and a v1 freezer directory', () => {
    const dir = makeCgroup('v2');
    dirs.push(dir);
    const rel = dir.slice(cgroupMounts().v2!.length);
    expect(resolveCgroup(dir)).toMatchObject({ path: rel, v2Dir: dir });
    expect(resolveCgroup(rel).v2Dir).toBe(dir);
    const v1 = makeCgroup('v1');
    dirs.push(v1);
    const v1rel = v1.slice(cgroupMounts().v1Freezer!.length);
    expect(resolveCgroup(v1)).toMatchObject({ path: v1rel, v1FreezerDir: v1 });
  });

  it('names the missing cgroup and where it looked', () => {
    expect(() => resolveCgroup('/no-such-fdckpt-cgroup')).toThrow(
      /cgroup \/no-such-fdckpt-cgroup: no such cgroup under/,
    );
    expect(() => resolveCgroup('')).toThrow(/empty/);
  });
});

describe('listTasks', () => {
  it('finds every process and thread in the cgroup and its descendants', async () => {
    const top = makeCgroup('v2');
    dirs.push(top);
    const sub = makeCgroup('v2', `${top.slice(cgroupMounts().v2!.length)}/inner`);
    const a = await startPython(THREADS, top);
    const b = await startPython(THREADS, sub);
    started.push(a, b);
    const tasks = listTasks(resolveCgroup(top));
    expect(tasks.pids).toEqual([a.pid, b.pid].sort((x, y) => x - y));
    const tids = [
      ...(JSON.parse(a.ready) as { tids: number[] }).tids,
      ...(JSON.parse(b.ready) as { tids: number[] }).tids,
    ];
    expect(tasks.tids).toEqual(tids.sort((x, y) => x - y));
    expect(cgroupOfPid(b.pid)).toBe(`${top.slice(cgroupMounts().v2!.length)}/inner`);
  });

  it('lists a v1 freezer cgroup through its tasks file', async () => {
    const v1 = makeCgroup('v1');
    dirs.push(v1);
    const a = await startPython(THREADS, v1);
    started.push(a);
    const tasks = listTasks(resolveCgroup(v1));
    expect(tasks.pids).toEqual([a.pid]);
    expect(tasks.tids).toHaveLength(4);
  });
});

function procState(pid: number): string {
  return /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
}

async function settledState(pid: number): Promise<string> {
  let state = procState(pid);
  for (let waited = 0; state === 'R' && waited < 5000; waited += 10) {
    await new Promise((r) => setTimeout(r, 10));
    state = procState(pid);
  }
  return state;
}

describe.each(['v2', 'v1'] as const)('freezer (%s)', (kind) => {
  it('freezes until the kernel reports frozen, and thaws', async () => {
    const dir = makeCgroup(kind);
    dirs.push(dir);
    const a = await startPython(THREADS, dir);
    started.push(a);
    const cg = resolveCgroup(dir);
    await freeze(cg);
    expect(isFrozen(cg)).toBe(true);
    if (kind === 'v2') expect(readFileSync(join(dir, 'cgroup.events'), 'utf8')).toMatch(/^frozen 1$/m);
    else expect(readFileSync(join(dir, 'freezer.state'), 'utf8').trim()).toBe('FROZEN');
    thaw(cg);
    expect(isFrozen(cg)).toBe(false);
    // Just after a thaw the task may be briefly runnable on its way back to its sleep:
    // wait for it to settle (frozen v1 tasks would stay in D).
    expect(await settledState(a.pid)).toBe('S');
  });

  it('a freeze still waiting for the kernel is thawed by the signal handlers (fault injection)', async () => {
    const dir = makeCgroup(kind);
    dirs.push(dir);
    started.push(await startPython(THREADS, dir));
    const cg = resolveCgroup(dir);
    // SIGTERM arriving between the request and "frozen": the handlers run thawActiveFreezes().
    await freeze(cg, { afterRequest: thawActiveFreezes, timeoutMs: 300 }).catch(() => undefined);
    expect(isFrozen(cg)).toBe(false);
    if (kind === 'v2') expect(readFileSync(join(dir, 'cgroup.freeze'), 'utf8').trim()).toBe('0');
    else expect(readFileSync(join(dir, 'freezer.state'), 'utf8').trim()).toBe('THAWED');
  });

  it('thaws when the work throws (fault injection)', async () => {
    const dir = makeCgroup(kind);
    dirs.push(dir);
    started.push(await startPython(THREADS, dir));
    const cg = resolveCgroup(dir);
    let sawFrozen = false;
    await expect(
      withFrozen(cg, () => {
        sawFrozen = isFrozen(cg);
        throw new Error('injected fault mid-capture');
      }),
    ).rejects.toThrow('injected fault mid-capture');
    expect(sawFrozen).toBe(true);
    expect(isFrozen(cg)).toBe(false);
  });

  it('thaws when async work rejects, even if asked to leave it frozen', async () => {
    const dir = makeCgroup(kind);
    dirs.push(dir);
    started.push(await startPython(THREADS, dir));
    const cg = resolveCgroup(dir);
    await expect(
      withFrozen(
        cg,
        async () => {
          await new Promise((r) => setTimeout(r, 1));
          throw new Error('injected async fault');
        },
        'leave-frozen',
      ),
    ).rejects.toThrow('injected async fault');
    expect(isFrozen(cg)).toBe(false);
  });

  it('can stop the processes instead: thawed, but every one of them stopped', async () => {
    const dir = makeCgroup(kind);
    dirs.push(dir);
    const a = await startPython(THREADS, dir);
    started.push(a);
    const cg = resolveCgroup(dir);
    await withFrozen(cg, () => undefined, 'stop');
    expect(isFrozen(cg)).toBe(false);
    // The SIGSTOP queued while frozen is taken once the thaw lets the process run.
    while (procState(a.pid) !== 'T') await new Promise((r) => setTimeout(r, 1));
    expect(procState(a.pid)).toBe('T');
    process.kill(a.pid, 'SIGCONT');
  });

  it('leaves the cgroup frozen only on success when asked', async () => {
    const dir = makeCgroup(kind);
    dirs.push(dir);
    started.push(await startPython(THREADS, dir));
    const cg = resolveCgroup(dir);
    const r = await withFrozen(cg, () => 42, 'leave-frozen');
    expect(r.value).toBe(42);
    expect(isFrozen(cg)).toBe(true);
    thaw(cg);
    const r2 = await withFrozen(cg, () => 'x');
    expect(r2.value).toBe('x');
    expect(r2.frozenMs).toBeGreaterThanOrEqual(r2.freezeWaitMs);
    expect(isFrozen(cg)).toBe(false);
  });

  it('stamps when the freeze was asked for and when the thaw was (wall clock)', async () => {
    const dir = makeCgroup(kind);
    dirs.push(dir);
    started.push(await startPython(THREADS, dir));
    const cg = resolveCgroup(dir);
    const before = Date.now();
    let during = 0;
    const r = await withFrozen(cg, async () => {
      during = Date.now();
      // Work that outlasts the freeze wait, so that the stamps are seen to bracket it.
      await new Promise((res) => setTimeout(res, 30));
    });
    const after = Date.now();
    expect(r.frozenAt).toBeGreaterThanOrEqual(before);
    expect(r.frozenAt).toBeLessThanOrEqual(during);
    expect(r.thawedAt).toBeGreaterThanOrEqual(during + 30 - 1);
    expect(r.thawedAt).toBeLessThanOrEqual(after);
    // The same window as frozenMs (two clocks: allow their ms rounding).
    expect(Math.abs(r.thawedAt! - r.frozenAt - r.frozenMs)).toBeLessThanOrEqual(2);
    // Left frozen: no thaw to stamp.
    const left = await withFrozen(cg, () => undefined, 'leave-frozen');
    expect(left.frozenAt).toBeGreaterThanOrEqual(after);
    expect(left.thawedAt).toBeUndefined();
    thaw(cg);
  });
});
