import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preflightCgroup, type FdVerdict } from '../../../src/agent/collect/preflight.js';
import { isFrozen } from '../../../src/agent/cgroup/freeze.js';
import { resolveCgroup } from '../../../src/agent/cgroup/cgroup.js';
import { destroyCgroup, killAll, makeCgroup, startPython, type Started } from '../../support/cgtest.js';

// One process with one fd of each class; a second, outside, holding a pipe end.
const POD = `
import os, fcntl, socket, time, sys
d = TMP
plain = os.open(d + "/plain", os.O_RDWR | os.O_CREAT)
gone = os.open(d + "/gone", os.O_RDWR | os.O_CREAT); os.unlink(d + "/gone")
locked = os.open(d + "/locked", os.O_RDWR | os.O_CREAT); fcntl.flock(locked, fcntl.LOCK_EX)
# owned by its parent (outside the pod): an owner that cannot be mapped to the restored process
owned = os.open(d + "/owned", os.O_RDWR | os.O_CREAT); fcntl.fcntl(owned, fcntl.F_SETOWN, os.getppid())
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
leak_r = os.open(FIFO, os.O_RDONLY | os.O_NONBLOCK)
ready(dict(plain=plain, gone=gone, locked=locked, owned=owned, sock=a.fileno(), fifo=leak_r))
time.sleep(3600)
`;
const OUTSIDE = `
import os, time
w = os.open(FIFO, os.O_RDWR)
ready(dict(w=w))
time.sleep(3600)
`;

const started: Started[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await killAll(started);
  for (const c of cleanups.splice(0)) await c();
});

function verdict(fds: FdVerdict[], pid: number, fd: number): FdVerdict {
  const v = fds.find((x) => x.pid === pid && x.fd === fd);
  if (!v) throw new Error(`no verdict for pid ${pid} fd ${fd}`);
  return v;
}

describe('preflightCgroup', () => {
  it('classifies every fd: restorable, unlinked, locked, owned, unsupported, ignored, leaked', async () => {
    const dir = makeCgroup('v2');
    const tmp = mkdtempSync(join(tmpdir(), 'fdckpt-pf-'));
    cleanups.push(
      () => destroyCgroup(dir),
      () => rmSync(tmp, { recursive: true, force: true }),
    );
    const fifo = join(tmp, 'fifo');
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [fifo]);
    const subst = (s: string): string =>
      s.replace('TMP', JSON.stringify(tmp)).replace(/FIFO/g, JSON.stringify(fifo));
    const outside = await startPython(subst(OUTSIDE));
    const pod = await startPython(subst(POD), dir);
    started.push(outside, pod);
    const fd = JSON.parse(pod.ready) as Record<string, number>;

    const report = await preflightCgroup(dir);
    const v = (n: number): FdVerdict => verdict(report.fds, pod.pid, n);
    expect(v(fd.plain!).class).toBe('restorable');
    expect(v(fd.gone!).class).toBe('unlinked');
    expect(v(fd.locked!).class).toBe('locked');
    expect(v(fd.owned!).class).toBe('owned');
    expect(v(fd.sock!).class).toBe('unsupported');
    expect(v(fd.fifo!)).toMatchObject({ class: 'leaked', type: 'fifo' });
    expect(v(fd.fifo!).reasons[0]).toMatch(new RegExp(`fifo shared with pid ${outside.pid} fd`));
    expect(report.ready).toBe(false);
    expect(report.counts.leaked).toBe(1);
    expect(isFrozen(resolveCgroup(dir))).toBe(false);

    const ignoring = await preflightCgroup(dir, { ignoreTypes: ['socket'], freeze: true });
    expect(verdict(ignoring.fds, pod.pid, fd.sock!).class).toBe('ignored');
    expect(isFrozen(resolveCgroup(dir))).toBe(false);
  });

  it('says ready for a pod with nothing to refuse', async () => {
    const dir = makeCgroup('v2');
    cleanups.push(() => destroyCgroup(dir));
    const pod = await startPython('import time\nready({})\ntime.sleep(3600)\n', dir);
    started.push(pod);
    const report = await preflightCgroup(dir);
    expect(report.fds.map((v) => v.class)).toEqual(['restorable', 'restorable', 'restorable']);
    expect(report.ready).toBe(true);
  });
});
