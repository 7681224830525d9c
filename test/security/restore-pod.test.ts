/**
 * Issue 12 items 6 and 8, through the agent's engine (EngineAdapter.restoreInto)
 * with real launchers (native fdckpt-hold) in a pod cgroup laid out as the
 * kubelet does:
 * - 6: files are validated where the restored program opens them (its
 *   container's root, here a private mount namespace), not in the agent's;
 * - 8: a pod is restored whole or not at all: a container that cannot be
 *   restored stops the restore before any container is touched, and every
 *   launcher of the pod is killed (none waits its 600 s, none runs half-restored).
 * Issue 15: the image is checked against the Checkpoint's digest while it is read,
 * once, before anything is planned or replayed.
 */
import { afterEach, expect, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { capture } from '../../src/agent/capture/index.js';
import { tamperedImage } from '../support/image-fixtures.js';
import { writeImage } from '../../src/agent/image/index.js';
import { EngineAdapter } from '../../src/agent/daemon/engine-adapter.js';
import type { RestoreIntoOutcome } from '../../src/agent/daemon/engine.js';
import type { ImageBinding } from '../../src/agent/model.js';
import { destroyCgroup, requireMount } from '../support/cgtest.js';

const HOLD = fileURLToPath(new URL('../../native/build/fdckpt-hold', import.meta.url));
const children: ChildProcess[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Pod {
  uid: string;
  containers: { name: string; id: string; dir: string }[];
}

/** A BestEffort pod cgroup with the given containers, as the kubelet lays it out. */
function makePod(names: string[]): Pod {
  const uid = randomUUID();
  const podDir = join(requireMount('v2'), 'kubepods', 'besteffort', `pod${uid}`);
  const containers = names.map((name) => {
    const id = randomBytes(32).toString('hex');
    const dir = join(podDir, id);
    mkdirSync(dir, { recursive: true });
    return { name, id, dir };
  });
  cleanups.push(() => destroyCgroup(podDir));
  return { uid, containers };
}

/** Runs `sh -c script` inside cgroup `dir`; the script sees $1 = fdckpt-hold. */
function inCgroup(dir: string, script: string, unshareMount = false): ChildProcess {
  const sh = ['sh', '-c', `echo $$ > ${join(dir, 'cgroup.procs')} && ${script}`, 'sh', HOLD];
  const [cmd, ...args] = unshareMount ? ['unshare', '-m', '--propagation', 'private', ...sh] : sh;
  const child = spawn(cmd!, args, { stdio: 'ignore' });
  children.push(child);
  return child;
}

function procs(dir: string): number[] {
  return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

async function waitFor<T>(what: string, probe: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The sleep holding `path` open as fd 3 in `dir`. */
function holder(dir: string): Promise<number> {
  return waitFor(`holder in ${dir}`, () =>
    procs(dir).find((p) => {
      try {
        return comm(p) === 'sleep' && readlinkSync(`/proc/${p}/fd/3`).length > 0;
      } catch {
        return false;
      }
    }),
  );
}

/** The held launcher (an fdckpt-hold child of an fdckpt-hold) in `dir`. */
function launcherReady(dir: string): Promise<true> {
  return waitFor(
    `launcher in ${dir}`,
    () => procs(dir).filter((p) => comm(p) === 'fdckpt-hold').length === 2 || undefined,
  );
}

/** Captures the holders into an image in the data dir; returns the request's image fields. */
async function imageOf(
  dataDir: string,
  pids: number[],
  binding: ImageBinding = BINDING,
): Promise<{ imagePath: string; sha256: string }> {
  const { checkpoint, problems } = capture(pids);
  expect(problems).toEqual([]);
  checkpoint.header.binding = binding;
  const imagePath = join(dataDir, 'images', 'x.fdimg');
  mkdirSync(join(dataDir, 'images'), { recursive: true });
  await writeImage(imagePath, checkpoint);
  return { imagePath, sha256: createHash('sha256').update(readFileSync(imagePath)).digest('hex') };
}

/** The Checkpoint the restores below are for (its image header must name it). */
const BINDING: ImageBinding = { namespace: 'default', name: 'c', uid: randomUUID(), podUid: randomUUID() };

function request(pod: Pod, image: { imagePath: string; sha256: string }, sourcePids: Record<string, number>) {
  return {
    binding: BINDING,
    pod: {
      namespace: 'default',
      name: 'p',
      uid: pod.uid,
      qosClass: 'BestEffort',
      containers: pod.containers.map((c) => ({ name: c.name, containerID: `containerd://${c.id}` })),
    },
    ...image,
    sourcePids,
    fds: 'All' as const,
    policy: { rules: [] },
  };
}

test('a file that exists only in the pod is validated in the pod (item 6)', async () => {
  if (!existsSync(HOLD)) throw new Error(`test prerequisite missing: ${HOLD} (npm run build:native)`);
  const dataDir = mkdtempSync(join(tmpdir(), 'fdckpt-sec-data-'));
  // The mount point exists on the host, empty: the file is in the pod's tmpfs only.
  const mnt = mkdtempSync(join(tmpdir(), 'fdckpt-sec-mnt-'));
  cleanups.push(
    () => rmSync(dataDir, { recursive: true, force: true }),
    () => rmSync(mnt, { recursive: true, force: true }),
  );
  const pod = makePod(['app']);
  const c = pod.containers[0]!;
  const f = join(mnt, 'only-in-pod');
  inCgroup(
    c.dir,
    `mount -t tmpfs fdckpt-sec ${mnt} && echo pod-data > ${f} && ` +
      `{ sh -c 'exec </dev/null >/dev/null 2>&1 3<${f}; exec sleep 1000' & } && ` +
      `exec "$1" --timeout 60 -- sleep 1000`,
    true,
  );
  const src = await holder(c.dir);
  await launcherReady(c.dir);
  expect(existsSync(f)).toBe(false);
  const image = await imageOf(dataDir, [src]);
  const engine = new EngineAdapter({ dataDir });
  const out: RestoreIntoOutcome = await engine.restoreInto(request(pod, image, { app: src }));
  expect(out.failures).toEqual([]);
  const restored = await waitFor('restored sleep', () =>
    procs(c.dir).find((p) => p !== src && comm(p) === 'sleep'),
  );
  expect(readlinkSync(`/proc/${restored}/fd/3`)).toBe(f);
  expect(readFileSync(`/proc/${restored}/fd/3`, 'utf8')).toBe('pod-data\n');
});

test('a two-container pod whose second container cannot be restored: nothing restored, every launcher gone (item 8)', async () => {
  if (!existsSync(HOLD)) throw new Error(`test prerequisite missing: ${HOLD} (npm run build:native)`);
  const dataDir = mkdtempSync(join(tmpdir(), 'fdckpt-sec-data-'));
  const files = mkdtempSync(join(tmpdir(), 'fdckpt-sec-files-'));
  cleanups.push(
    () => rmSync(dataDir, { recursive: true, force: true }),
    () => rmSync(files, { recursive: true, force: true }),
  );
  const [a, b] = [join(files, 'a'), join(files, 'b')];
  writeFileSync(a, 'a\n');
  writeFileSync(b, 'b\n');
  const src = makePod(['one', 'two']);
  for (const [i, c] of src.containers.entries())
    inCgroup(c.dir, `exec </dev/null >/dev/null 2>&1 3<${i === 0 ? a : b}; exec sleep 1000`);
  const [pa, pb] = [await holder(src.containers[0]!.dir), await holder(src.containers[1]!.dir)];
  const image = await imageOf(dataDir, [pa, pb]);
  // Container two's file is gone by restore time.
  unlinkSync(b);
  const pod = makePod(['one', 'two']);
  for (const c of pod.containers) inCgroup(c.dir, `exec "$1" --timeout 60 -- sleep 1000`);
  for (const c of pod.containers) await launcherReady(c.dir);
  const engine = new EngineAdapter({ dataDir });
  const out = await engine.restoreInto(request(pod, image, { one: pa, two: pb }));
  expect(out.failures).toHaveLength(1);
  expect(out.failures[0]).toMatchObject({ container: 'two', fd: 3 });
  expect(out.failures[0]!.message).toMatch(/ENOENT/);
  // Neither container runs: container one was not restored alone, no launcher waits.
  for (const c of pod.containers) {
    await waitFor(
      `container ${c.name} emptied`,
      () => (procs(c.dir).length === 0 ? true : undefined),
      5_000,
    ).catch(() => undefined);
    expect({ container: c.name, procs: procs(c.dir).map((p) => `${p} ${comm(p)}`) }).toEqual({
      container: c.name,
      procs: [],
    });
  }
});

test("an image bound to another tenant's Checkpoint is refused, its digest notwithstanding (item 2)", async () => {
  if (!existsSync(HOLD)) throw new Error(`test prerequisite missing: ${HOLD} (npm run build:native)`);
  const dataDir = mkdtempSync(join(tmpdir(), 'fdckpt-sec-data-'));
  const files = mkdtempSync(join(tmpdir(), 'fdckpt-sec-files-'));
  cleanups.push(
    () => rmSync(dataDir, { recursive: true, force: true }),
    () => rmSync(files, { recursive: true, force: true }),
  );
  const secret = join(files, 'tenant-b-secret');
  writeFileSync(secret, 'b\n');
  const other = makePod(['app']);
  inCgroup(other.containers[0]!.dir, `exec </dev/null >/dev/null 2>&1 3<${secret}; exec sleep 1000`);
  const src = await holder(other.containers[0]!.dir);
  // Tenant B's image, with its true digest: what a patched status.image would point at.
  const image = await imageOf(dataDir, [src], { ...BINDING, namespace: 'tenant-b', uid: randomUUID() });
  const pod = makePod(['app']);
  inCgroup(pod.containers[0]!.dir, `exec "$1" --timeout 60 -- sleep 1000`);
  await launcherReady(pod.containers[0]!.dir);
  const engine = new EngineAdapter({ dataDir });
  await expect(engine.restoreInto(request(pod, image, { app: src }))).rejects.toThrow(
    /belongs to checkpoint tenant-b\/c .*not to checkpoint default\/c/,
  );
  // Nothing of tenant B reached the pod: its launcher is still waiting, untouched.
  const held = procs(pod.containers[0]!.dir).filter((p) => comm(p) === 'fdckpt-hold');
  expect(held).toHaveLength(2);
});

test('a tampered image (one byte of a path, its trailer made right) is refused by its digest before any replay', async () => {
  if (!existsSync(HOLD)) throw new Error(`test prerequisite missing: ${HOLD} (npm run build:native)`);
  const dataDir = mkdtempSync(join(tmpdir(), 'fdckpt-sec-data-'));
  const files = mkdtempSync(join(tmpdir(), 'fdckpt-sec-files-'));
  cleanups.push(
    () => rmSync(dataDir, { recursive: true, force: true }),
    () => rmSync(files, { recursive: true, force: true }),
  );
  writeFileSync(join(files, 'data-a'), 'a\n');
  const src = makePod(['app']);
  inCgroup(
    src.containers[0]!.dir,
    `exec </dev/null >/dev/null 2>&1 3<${join(files, 'data-a')}; exec sleep 1000`,
  );
  const pid = await holder(src.containers[0]!.dir);
  const image = await imageOf(dataDir, [pid]);
  // The image's own checksum holds: only the Checkpoint's digest tells it from the one written.
  const bytes = tamperedImage(readFileSync(image.imagePath), 'data-a');
  writeFileSync(image.imagePath, bytes);
  const actual = createHash('sha256').update(bytes).digest('hex');
  const pod = makePod(['app']);
  inCgroup(pod.containers[0]!.dir, `exec "$1" --timeout 60 -- sleep 1000`);
  await launcherReady(pod.containers[0]!.dir);
  const engine = new EngineAdapter({ dataDir });
  await expect(engine.restoreInto(request(pod, image, { app: pid }))).rejects.toThrow(
    `${image.imagePath}: sha256 ${actual}, expected ${image.sha256}: not the image asked for`,
  );
  // Refused before anything ran: the launcher still waits, untouched.
  expect(procs(pod.containers[0]!.dir).filter((p) => comm(p) === 'fdckpt-hold')).toHaveLength(2);
});

function statSize(path: string): number {
  return statSync(path).size;
}

/** Bytes this process has read through read(2) and friends, all threads (/proc/self/io rchar). */
function bytesRead(): number {
  return Number(/^rchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);
}

test('a restore reads (and hashes) its image once: a 48 MiB image costs under 1.5 times its size', async () => {
  if (!existsSync(HOLD)) throw new Error(`test prerequisite missing: ${HOLD} (npm run build:native)`);
  const dataDir = mkdtempSync(join(tmpdir(), 'fdckpt-sec-data-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const src = makePod(['app']);
  const MiB48 = 48 << 20;
  // A memfd's contents are the only large thing an image holds.
  const py = `import os, time\nfd = os.memfd_create("big")\nos.write(fd, b"x" * ${MiB48})\nos.dup2(fd, 3)\ntime.sleep(1000)\n`;
  inCgroup(src.containers[0]!.dir, `exec </dev/null >/dev/null 2>&1; exec python3 -c '${py}'`);
  const pid = await waitFor('the memfd holder', () =>
    procs(src.containers[0]!.dir).find((p) => {
      try {
        return readlinkSync(`/proc/${p}/fd/3`).startsWith('/memfd:big');
      } catch {
        return false;
      }
    }),
  );
  // Filled: the write is done once the size is there.
  await waitFor('the memfd filled', () => (statSize(`/proc/${pid}/fd/3`) === MiB48 ? true : undefined));
  const image = await imageOf(dataDir, [pid], { ...BINDING, uid: randomUUID() });
  const size = statSize(image.imagePath);
  expect(size).toBeGreaterThan(MiB48);
  const pod = makePod(['app']);
  inCgroup(pod.containers[0]!.dir, `exec "$1" --timeout 60 -- sleep 1000`);
  await launcherReady(pod.containers[0]!.dir);
  const engine = new EngineAdapter({ dataDir });
  // Refused after the image is read (its header names another Checkpoint), before any replay.
  const before = bytesRead();
  await expect(engine.restoreInto(request(pod, image, { app: pid }))).rejects.toThrow(
    /belongs to checkpoint/,
  );
  const read = bytesRead() - before;
  expect(read).toBeGreaterThanOrEqual(size);
  expect(read).toBeLessThan(1.5 * size);
});
