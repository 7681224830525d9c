/**
 * Issue 12 item 3: a pod holding a FUSE server must never deadlock capture nor
 * stay frozen. The server (test/fixtures/tinyfuse.c) runs in the captured
 * cgroup, so once frozen it answers nothing: an fstat, a close (FLUSH) or a
 * stat through the file waits until the thaw.
 */
import { afterEach, expect, jest, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { isFrozen } from '../../src/agent/cgroup/freeze.js';
import { resolveCgroup } from '../../src/agent/cgroup/cgroup.js';
import { destroyCgroup, killAll, makeCgroup, startPython, type Started } from '../support/cgtest.js';
import { describeWithFuse, startTinyFuse } from '../support/fuse.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'bin', 'fdckpt.js');
const started: Started[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  // LIFO: the cgroup is thawed and its processes killed before the mount goes.
  for (const c of cleanups.splice(0).reverse()) await c();
  await killAll(started);
});
jest.setTimeout(60_000);

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  ms: number;
}

/** Runs a child, killed after `limitMs`; resolves with how it ended. */
function runChild(args: string[], limitMs: number): { child: ChildProcess; done: Promise<Run> } {
  const t0 = Date.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const done = new Promise<Run>((resolve) =>
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, ms: Date.now() - t0 });
    }),
  );
  return { child, done };
}

/** A cgroup with the FUSE server and a process holding its file open. */
async function fuseCgroup(): Promise<{ dir: string; file: string }> {
  const dir = makeCgroup('v2');
  cleanups.push(() => destroyCgroup(dir));
  const fuse = await startTinyFuse(dir);
  cleanups.push(() => fuse.stop());
  const file = join(fuse.mnt, 'f');
  started.push(
    await startPython(
      `f = open(${JSON.stringify(file)}, "rb")\nready({"fd": f.fileno()})\nimport time\ntime.sleep(3600)\n`,
      dir,
    ),
  );
  return { dir, file };
}

describeWithFuse('freeze: FUSE')('a pod that serves FUSE', () => {
  test('capture --cgroup refuses the FUSE file by name, without waiting on the frozen server', async () => {
    if (!existsSync(join(root, 'dist', 'cli', 'main.js')))
      throw new Error('test prerequisite missing: dist/ (npm run build)');
    const { dir } = await fuseCgroup();
    const out = mkdtempSync(join(tmpdir(), 'fdckpt-fuse-out-'));
    cleanups.push(() => rmSync(out, { recursive: true, force: true }));
    const journal = join(out, 'journal');
    const { done } = runChild(
      [
        bin,
        'capture',
        '--cgroup',
        dir,
        '--output',
        join(out, 'x.fdimg'),
        '--leak-policy',
        'ignore',
        '--freeze-journal',
        journal,
      ],
      20_000,
    );
    const run = await done;
    const frozen = isFrozen(resolveCgroup(dir));
    expect({ signal: run.signal, frozen }).toEqual({ signal: null, frozen: false });
    expect(run.code).toBe(3); // not checkpointable: a refused fd
    expect(run.stderr).toMatch(/on a FUSE file system \(fuse\.tinyfuse/);
    expect(existsSync(join(out, 'x.fdimg'))).toBe(false);
  });

  test('the watchdog thaws on its deadline while the capturing thread is stuck in a syscall', async () => {
    if (!existsSync(join(root, 'dist', 'agent', 'cgroup', 'freeze.js')))
      throw new Error('test prerequisite missing: dist/ (npm run build)');
    const { dir, file } = await fuseCgroup();
    const out = mkdtempSync(join(tmpdir(), 'fdckpt-fuse-wd-'));
    cleanups.push(() => rmSync(out, { recursive: true, force: true }));
    // The work does what no capture may do: stat through the frozen server. Only
    // something outside this thread can end it.
    const script = `
      import { statSync } from 'node:fs';
      const { withFrozen } = await import(${JSON.stringify(join(root, 'dist', 'agent', 'cgroup', 'freeze.js'))});
      const { resolveCgroup } = await import(${JSON.stringify(join(root, 'dist', 'agent', 'cgroup', 'cgroup.js'))});
      try {
        await withFrozen(resolveCgroup(${JSON.stringify(dir)}), () => statSync(${JSON.stringify(file)}), 'thaw',
          { watchdogMs: 1000, journalDir: ${JSON.stringify(join(out, 'journal'))} });
        process.stderr.write('work ended normally\\n');
        process.exit(0);
      } catch (err) {
        process.stderr.write(String(err.message) + '\\n');
        process.exit(1);
      }`;
    const { done } = runChild(['--input-type=module', '-e', script], 20_000);
    // Seen frozen first: the test must not pass because nothing froze.
    let sawFrozen = false;
    for (let i = 0; i < 200 && !sawFrozen; i++) {
      sawFrozen = isFrozen(resolveCgroup(dir));
      if (!sawFrozen) await sleep(10);
    }
    expect(sawFrozen).toBe(true);
    const t0 = Date.now();
    while (isFrozen(resolveCgroup(dir)) && Date.now() - t0 < 8_000) await sleep(20);
    expect(isFrozen(resolveCgroup(dir))).toBe(false);
    const run = await done;
    // The capture saw a thawed pod: its result cannot be trusted and it says so.
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/thawed by the watchdog after 1000 ms/);
  });
});
