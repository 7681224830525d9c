import { afterEach, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capture } from '../../../src/agent/capture/index.js';
import { listTasks, resolveCgroup } from '../../../src/agent/cgroup/cgroup.js';
import { findLeaks } from '../../../src/agent/collect/leaks.js';
import { destroyCgroup, killAll, makeCgroup, startPython, type Started } from '../../support/cgtest.js';

const started: Started[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await killAll(started);
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('names the outside holder by pod when its cgroup is a kubelet pod cgroup', async () => {
  const uid = randomUUID();
  const cid = randomBytes(32).toString('hex');
  const tmp = mkdtempSync(join(tmpdir(), 'fdckpt-podname-'));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const fifo = join(tmp, 'fifo');
  execFileSync('mkfifo', [fifo]);
  // The other pod, where the local kubelet would put it (cgroupfs driver, besteffort).
  const other = makeCgroup('v2', `/kubepods/besteffort/pod${uid}/${cid}`);
  cleanups.push(() => destroyCgroup(other.slice(0, other.lastIndexOf('/'))));
  const pod = makeCgroup('v2');
  cleanups.push(() => destroyCgroup(pod));
  const reader = await startPython(
    `import os, time\nfd = os.open(${JSON.stringify(fifo)}, os.O_RDONLY | os.O_NONBLOCK)\nready({"fd": fd})\ntime.sleep(3600)\n`,
    pod,
  );
  const writer = await startPython(
    `import os, time\nfd = os.open(${JSON.stringify(fifo)}, os.O_WRONLY)\nready({"fd": fd})\ntime.sleep(3600)\n`,
    other,
  );
  started.push(reader, writer);
  const tasks = listTasks(resolveCgroup(pod));
  const report = findLeaks(capture(tasks.pids).checkpoint, tasks.tids, {
    podName: (u) => (u === uid ? { namespace: 'shop', name: 'cart-7f9c' } : undefined),
  });
  expect(report.leaks).toHaveLength(1);
  expect(report.leaks[0]).toMatchObject({
    via: 'fifo shared',
    object: { type: 'fifo', id: fifo },
    inside: { pid: reader.pid, fd: (JSON.parse(reader.ready) as { fd: number }).fd },
    outside: {
      pid: writer.pid,
      fd: (JSON.parse(writer.ready) as { fd: number }).fd,
      cgroup: `/kubepods/besteffort/pod${uid}/${cid}`,
      pod: { uid, namespace: 'shop', name: 'cart-7f9c' },
    },
  });
});
