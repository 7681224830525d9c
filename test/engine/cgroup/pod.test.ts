import { afterEach, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, rmdirSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findPodCgroup, podUidOfCgroup, bareContainerId } from '../../../src/agent/cgroup/pod.js';
import { parseCgroupHierarchies, parseCgroupMounts } from '../../../src/agent/cgroup/mounts.js';
import { requireMount } from '../../support/cgtest.js';

/** Directories this test created, deepest last; removed in reverse. Pre-existing parents stay. */
const created: string[] = [];

function mkdirs(root: string, rel: string): void {
  let dir = root;
  for (const part of rel.split('/').filter(Boolean)) {
    dir = join(dir, part);
    if (!existsSync(dir)) {
      mkdirSync(dir);
      created.push(dir);
    }
  }
}

afterEach(() => {
  for (const dir of created.splice(0).reverse()) rmdirSync(dir);
});

const cid = (): string => randomBytes(32).toString('hex');

describe('findPodCgroup', () => {
  const root = requireMount('v2');

  it.each([
    [
      'cgroupfs besteffort (the local kubelet)',
      (u: string, c: string) => `/kubepods/besteffort/pod${u}/${c}`,
      'besteffort',
    ],
    ['cgroupfs burstable', (u: string, c: string) => `/kubepods/burstable/pod${u}/${c}`, undefined],
    ['cgroupfs guaranteed', (u: string, c: string) => `/kubepods/pod${u}/${c}`, undefined],
    ['cgroupfs CRI-O', (u: string, c: string) => `/kubepods/besteffort/pod${u}/crio-${c}`, undefined],
    [
      'systemd containerd',
      (u: string, c: string) =>
        `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${u.replace(/-/g, '_')}.slice/cri-containerd-${c}.scope`,
      undefined,
    ],
    [
      'systemd CRI-O guaranteed',
      (u: string, c: string) => `/kubepods.slice/kubepods-pod${u.replace(/-/g, '_')}.slice/crio-${c}.scope`,
      undefined,
    ],
    [
      'nested under a prefix (kind)',
      (u: string, c: string) =>
        `/fdckpt-test-${c.slice(0, 6)}/kubelet.slice/kubepods/besteffort/pod${u}/${c}`,
      undefined,
    ],
  ] as const)('finds %s', (_name, layout, qos) => {
    const uid = randomUUID();
    const c = cid();
    const rel = layout(uid, c);
    mkdirs(root, rel);
    const found = findPodCgroup(uid, [`containerd://${c}`], qos ? { qos } : {});
    expect(found.containers[0]!.cgroup.v2Dir).toBe(join(root, rel));
    expect(found.pod.path).toBe(rel.slice(0, rel.lastIndexOf('/')));
    expect(podUidOfCgroup(rel)).toBe(uid);
  });

  it('names what is missing', () => {
    const uid = randomUUID();
    expect(() => findPodCgroup(uid)).toThrow(new RegExp(`pod ${uid}: no cgroup found under`));
    mkdirs(root, `/kubepods/besteffort/pod${uid}`);
    expect(() => findPodCgroup(uid, ['containerd://' + 'ab'.repeat(32)])).toThrow(
      /container abab.* of pod .*: no cgroup in/,
    );
    expect(() => findPodCgroup('not-a-uid')).toThrow(/not a UID/);
    expect(() => findPodCgroup(uid, ['xyz'])).toThrow(/not a hex container ID/);
  });
});

describe('cgroup helpers', () => {
  it('strips runtime schemes from container IDs', () => {
    expect(bareContainerId('containerd://abc')).toBe('abc');
    expect(bareContainerId('cri-o://abc')).toBe('abc');
    expect(bareContainerId('abc')).toBe('abc');
  });

  it('finds the mounts of pure v2, hybrid and legacy hosts in mountinfo', () => {
    const v2 = '30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n';
    expect(parseCgroupMounts(v2)).toEqual({ v2: '/sys/fs/cgroup' });
    const hybrid =
      '37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n' +
      '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n' +
      '99 31 0:38 /sub /mnt/inner rw,relatime - cgroup2 cgroup2 rw\n';
    expect(parseCgroupMounts(hybrid)).toEqual({
      v2: '/sys/fs/cgroup/unified',
      v1Freezer: '/sys/fs/cgroup/freezer',
    });
    expect(parseCgroupMounts('1 2 0:1 / /c\\040g rw - cgroup cgroup rw,cpu,freezer\n')).toEqual({
      v1Freezer: '/c g',
    });
  });

  it('lists every hierarchy of a hybrid host from mountinfo, not the directories beside them', () => {
    const hybrid =
      '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n' +
      '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n' +
      '37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n' +
      '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n' +
      '99 31 0:38 /sub /mnt/inner rw,relatime - cgroup2 cgroup2 rw\n' +
      '42 23 0:40 / /proc rw - proc proc rw\n';
    expect(parseCgroupHierarchies(hybrid)).toEqual([
      '/sys/fs/cgroup/cpu,cpuacct',
      '/sys/fs/cgroup/freezer',
      '/sys/fs/cgroup/unified',
    ]);
    // This host's own list holds only cgroup filesystems: each has a cgroup.procs.
    const own = parseCgroupHierarchies(readFileSync('/proc/self/mountinfo', 'utf8'));
    expect(own.length).toBeGreaterThan(0);
    for (const at of own) expect(existsSync(join(at, 'cgroup.procs'))).toBe(true);
  });

  it('maps kubelet cgroup paths to pod UIDs and leaves others alone', () => {
    expect(podUidOfCgroup('/user.slice/session-1.scope')).toBeUndefined();
    expect(podUidOfCgroup('/kubepods/pod0a1b2c3d-0000-1111-2222-333344445555')).toBe(
      '0a1b2c3d-0000-1111-2222-333344445555',
    );
  });
});
