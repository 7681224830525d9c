import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { capture } from '../../../src/agent/capture/index.js';
import { findLeaks } from '../../../src/agent/collect/leaks.js';
import { captureCgroup } from '../../../src/agent/collect/cgroupcapture.js';
import { LeakError, type Leak } from '../../../src/agent/collect/report.js';
import { isFrozen } from '../../../src/agent/cgroup/freeze.js';
import { listTasks, resolveCgroup } from '../../../src/agent/cgroup/cgroup.js';
import { cgroupMounts } from '../../../src/agent/cgroup/mounts.js';
import { startLeakPair, type LeakPair } from '../../support/leakpair.js';

let pair: LeakPair;
let podDir: string;
let outDir: string;
let tmp: string;
let info: Pick<LeakPair, 'child' | 'inside' | 'outside'>;

beforeAll(async () => {
  pair = await startLeakPair();
  ({ podDir, outDir, tmp } = pair);
  info = pair;
});

afterAll(async () => {
  await pair.stop();
});

function leakOn(leaks: Leak[], insideFd: number): Leak[] {
  return leaks.filter((l) => l.inside.pid === info.child && l.inside.fd === insideFd);
}

const link = (pid: number, fd: number): string => readlinkSync(`/proc/${pid}/fd/${fd}`);
const outCgroup = (): string => outDir.slice(cgroupMounts().v2!.length);

describe('findLeaks across two cgroups', () => {
  it('finds each leak with its holder outside, and no false positive', () => {
    const tasks = listTasks(resolveCgroup(podDir));
    expect(tasks.pids).toEqual([info.child]);
    const { checkpoint } = capture(tasks.pids);
    const report = findLeaks(checkpoint, tasks.tids);
    const { inside: i, outside: o } = info;
    const parentPid = o.pid!;
    const expectLeak = (insideFd: number, via: string, type: string, outsideFd: number): void => {
      const found = leakOn(report.leaks, insideFd);
      expect(found).toHaveLength(1);
      expect(found[0]).toMatchObject({
        via,
        object: { type },
        outside: {
          pid: parentPid,
          fd: outsideFd,
          comm: expect.stringMatching(/python/) as unknown,
          cgroup: outCgroup(),
        },
      });
    };
    expectLeak(i.pipe_r!, 'other end of pipe', 'pipe', o.pipe_w!);
    expect(leakOn(report.leaks, i.pipe_r!)[0]!.object.id).toBe(link(info.child, i.pipe_r!));
    expectLeak(i.shared!, 'same open file', 'regular', o.shared!);
    expectLeak(i.ep_r!, 'other end of pipe', 'pipe', o.ep_w!);
    expectLeak(i.slave!, 'pty peer', 'tty', o.master!);
    expectLeak(i.sock_in!, 'socket peer', 'socket', o.sock_out!);
    // Every leak names the pod's own object, as the pod's /proc shows it.
    expect(leakOn(report.leaks, i.sock_in!)[0]!.object.id).toBe(link(info.child, i.sock_in!));
    expect(leakOn(report.leaks, i.slave!)[0]!.object.id).toBe(link(info.child, i.slave!));
    // The epoll still watches a pipe no pod fd refers to: its read end, and its write end, are held outside.
    const viaEpoll = leakOn(report.leaks, i.epoll!);
    expect(viaEpoll.map((l) => [l.via, l.outside.fd]).sort()).toEqual(
      [
        ['epoll target', o.orph_r],
        ['other end of pipe', o.orph_w],
      ].sort(),
    );
    expect(viaEpoll[0]!.object.id).toBe(link(parentPid, o.orph_r!));
    // Exactly those seven: the independent open, the mapping, /dev/null are not leaks.
    expect(report.leaks).toHaveLength(7);
    expect(leakOn(report.leaks, i.indep!)).toEqual([]);
    expect(leakOn(report.leaks, i.mapped!)).toEqual([]);
    // ...but the inode-level sharing is noted.
    const indepNote = report.notes.find((n) => n.kind === 'shared-inode' && n.inside.fd === i.indep);
    expect(indepNote?.outside).toMatchObject({ pid: parentPid, fd: o.indep });
    const mapNote = report.notes.find((n) => n.kind === 'mapped-outside' && n.inside.fd === i.mapped);
    expect(mapNote?.outside.pid).toBe(parentPid);
    expect(mapNote?.object.id).toBe(join(tmp, 'mapped.txt'));
    const lockNote = report.notes.find((n) => n.kind === 'locked-outside' && n.inside.fd === i.indep);
    expect(lockNote?.outside.pid).toBe(parentPid);
    expect(lockNote?.detail).toMatch(/FLOCK/);
    expect(report.scanned.processes).toBeGreaterThan(1);
  });

  it('finds the same edges when the other cgroup is taken as the pod', () => {
    // The same scan from the other side: the parent's cgroup as the "pod" finds the same five edges.
    const tasks = listTasks(resolveCgroup(outDir));
    const report = findLeaks(capture(tasks.pids).checkpoint, tasks.tids);
    const vias = report.leaks
      .filter((l) => l.outside.pid === info.child)
      .map((l) => l.via)
      .sort();
    expect(vias).toEqual([
      'other end of pipe',
      'other end of pipe',
      'pty peer',
      'same open file',
      'socket peer',
    ]);
  });
});

describe('captureCgroup', () => {
  it('refuses under policy fail, naming the first leak, and thaws', async () => {
    const err = await captureCgroup(podDir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeakError);
    expect((err as LeakError).report.leaks).toHaveLength(7);
    expect(isFrozen(resolveCgroup(podDir))).toBe(false);
  });

  it('captures under policy warn with the leaks in the result, freezing only for the capture', async () => {
    const r = await captureCgroup(podDir, { leakPolicy: 'warn' });
    expect(r.leaks?.leaks).toHaveLength(7);
    expect(r.checkpoint.processes.map((p) => p.pid)).toEqual([info.child]);
    expect(r.timings.frozenMs).toBeGreaterThanOrEqual(r.timings.captureMs);
    expect(isFrozen(resolveCgroup(podDir))).toBe(false);
  });

  it('skips the check under policy ignore and can leave the cgroup frozen', async () => {
    const r = await captureCgroup(podDir, { leakPolicy: 'ignore', after: 'leave-frozen' });
    expect(r.leaks).toBeUndefined();
    const cg = resolveCgroup(podDir);
    expect(isFrozen(cg)).toBe(true);
    writeThaw(podDir);
    expect(isFrozen(cg)).toBe(false);
  });

  it.each(['frozen', 'captured', 'pinned', 'thawed', 'collected'] as const)(
    'thaws when a fault is injected at step %s',
    async (at) => {
      const err = await captureCgroup(podDir, {
        leakPolicy: 'warn',
        after: 'leave-frozen',
        onStep: (step) => {
          if (step === at) throw new Error(`injected fault at ${step}`);
        },
      }).catch((e: unknown) => e);
      expect((err as Error).message).toBe(`injected fault at ${at}`);
      expect(isFrozen(resolveCgroup(podDir))).toBe(at === 'thawed' || at === 'collected');
      writeThaw(podDir);
    },
  );
});

function writeThaw(dir: string): void {
  // Thaw by hand so that one test's frozen state cannot carry into the next.
  writeFileSync(join(dir, 'cgroup.freeze'), '0');
}
