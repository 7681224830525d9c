/**
 * The agent's engine (EngineAdapter.checkpointPod) on a real pod cgroup laid out as
 * the kubelet does (issue 15, "the engine–daemon boundary"): what it reports is what
 * the engine found, passed on as is — not formatted by the engine and parsed back by
 * the daemon.
 */
import { afterEach, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineAdapter } from '../../src/agent/daemon/engine-adapter.js';
import type { CheckpointPodRequest } from '../../src/agent/daemon/engine.js';
import type { LeakPolicy } from '../../src/api/index.js';
import { destroyCgroup, killAll, makeCgroup, startPython, type Started } from '../support/cgtest.js';

const started: Started[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await killAll(started);
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Scene {
  tmp: string;
  dataDir: string;
  uid: string;
  cid: string;
  other: { uid: string; cgroup: string };
  reader: Started;
  writer: Started;
}

/** A BestEffort pod cgroup (one container) and another pod's container, as the kubelet lays them out. */
function podCgroup(): { uid: string; cid: string; dir: string } {
  const uid = randomUUID();
  const cid = randomBytes(32).toString('hex');
  const dir = makeCgroup('v2', `/kubepods/besteffort/pod${uid}/${cid}`);
  cleanups.push(() => destroyCgroup(dir.slice(0, dir.lastIndexOf('/'))));
  return { uid, cid, dir };
}

/** The pod reads a fifo another pod writes: one leak, `fifo shared`, to a pod the agent knows by UID. */
async function scene(): Promise<Scene> {
  const tmp = mkdtempSync(join(tmpdir(), 'fdckpt-adapter-'));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const fifo = join(tmp, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const pod = podCgroup();
  const other = podCgroup();
  const reader = await startPython(
    `import os, time\nfd = os.open(${JSON.stringify(fifo)}, os.O_RDONLY | os.O_NONBLOCK)\nready({"fd": fd})\ntime.sleep(3600)\n`,
    pod.dir,
  );
  started.push(reader);
  const writer = await startPython(
    `import os, time\nfd = os.open(${JSON.stringify(fifo)}, os.O_WRONLY)\nready({"fd": fd})\ntime.sleep(3600)\n`,
    other.dir,
  );
  started.push(writer);
  const otherCgroup = other.dir.slice(other.dir.indexOf('/kubepods/'));
  return {
    tmp,
    dataDir: join(tmp, 'data'),
    uid: pod.uid,
    cid: pod.cid,
    other: { uid: other.uid, cgroup: otherCgroup },
    reader,
    writer,
  };
}

function request(
  s: Scene,
  leakPolicy: LeakPolicy,
  extra: Partial<CheckpointPodRequest> = {},
): CheckpointPodRequest {
  return {
    pod: {
      namespace: 'shop',
      name: 'cart',
      uid: s.uid,
      qosClass: 'BestEffort',
      containers: [{ name: 'app', containerID: `containerd://${s.cid}` }],
    },
    leakPolicy,
    afterCapture: 'LeaveRunning',
    ignore: { types: [], paths: [] },
    dryRun: false,
    imagePath: join(s.dataDir, 'images', 'shop', 'c.fdckpt'),
    ...extra,
  };
}

const fdOf = (s: Started): number => (JSON.parse(s.ready) as { fd: number }).fd;

test('leaks come with their via and structured holders, and leakPolicy Fail writes no image', async () => {
  const s = await scene();
  const engine = new EngineAdapter({ dataDir: s.dataDir });
  const before = Date.now();
  const refused = await engine.checkpointPod(request(s, 'Fail'));
  const after = Date.now();
  // frozenAt is the freeze's own stamp: within the call, and the freeze fits after it.
  const { frozenAt, freezeMs } = refused.durations;
  expect(frozenAt).toBeGreaterThanOrEqual(before);
  expect(frozenAt! + freezeMs).toBeLessThanOrEqual(after + 1);
  expect(refused.leaksChecked).toBe(true);
  expect(refused.image).toBeUndefined();
  expect(refused.containers).toEqual([
    expect.objectContaining({ name: 'app', processes: 1, pid: s.reader.pid }),
  ]);
  expect(refused.leaks).toEqual([
    {
      type: 'fifo',
      object: expect.stringMatching(/\/fifo$/) as unknown as string,
      via: 'fifo shared',
      inside: {
        pid: s.reader.pid,
        comm: expect.stringMatching(/^python/) as unknown as string,
        fd: fdOf(s.reader),
        pod: { uid: s.uid, namespace: 'shop', name: 'cart' },
      },
      outside: {
        pid: s.writer.pid,
        comm: expect.stringMatching(/^python/) as unknown as string,
        fd: fdOf(s.writer),
        cgroup: s.other.cgroup,
        pod: { uid: s.other.uid },
      },
    },
  ]);
  // Warn: the same leak, and the image is written.
  const warned = await engine.checkpointPod(request(s, 'Warn'));
  expect(warned.leaks).toEqual(refused.leaks);
  expect(warned.image?.path).toBe(request(s, 'Warn').imagePath);
  expect(existsSync(warned.image!.path)).toBe(true);
});
