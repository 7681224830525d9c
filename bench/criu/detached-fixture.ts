/**
 * test/fixtures/fdproc.py started the way CRIU wants a dumpee: its own session
 * (setsid -f, so no --shell-job: sid and pgid are inside the dumped tree), stdin
 * /dev/null, stdout/stderr a regular file (no pipe or socket of ours to follow).
 * `setsid -f` forks and exits, so the fixture is orphaned and, with this process
 * a child subreaper, reparented to us: we can reap it, and so the CRIU-restored
 * copy with the same pid (which CRIU orphans too).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { reap } from '../../src/agent/linux/subreaper.js';
import type { WaitStatus } from '../../src/agent/linux/wait.js';

// From bench/criu (source) or build/bench/criu (compiled).
const script = ['../../test/fixtures/fdproc.py', '../../../test/fixtures/fdproc.py']
  .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
  .find((p) => existsSync(p));

/** Pids started here and not yet reaped, and directories not yet removed, for killAllOnSignal(). */
const live = new Set<number>();
const liveDirs = new Set<string>();

/** Makes killAllOnSignal() remove `dir` too (until removeDir). */
export function trackDir(dir: string): void {
  liveDirs.add(dir);
}

/** Removes `dir` and forgets it. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
}

/** Our children now (fixtures reparented to us, criu), from /proc/self/task/TID/children. */
function ourChildren(): number[] {
  const pids: number[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const list = readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim();
      if (list) pids.push(...list.split(' ').map(Number));
    } catch {
      // the thread ended meanwhile
    }
  }
  return pids;
}

/**
 * On SIGINT/SIGTERM: SIGKILL every child (a fixture still starting has no known
 * pid yet, and fixtures run in their own session, so a Ctrl-C does not reach
 * them), reap them, remove the directories, exit.
 */
export function killAllOnSignal(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      const pids = new Set([...live, ...ourChildren()]);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      const pause = new Int32Array(new SharedArrayBuffer(4));
      for (let i = 0; i < 200 && pids.size; i++) {
        for (const pid of pids) {
          try {
            if (reap(pid)) pids.delete(pid);
          } catch {
            pids.delete(pid); // ECHILD: Node's own child (spawnSync), reaped by libuv
          }
        }
        Atomics.wait(pause, 0, 0, 10);
      }
      for (const dir of liveDirs) {
        try {
          rmSync(dir, { recursive: true, force: true });
        } catch (err) {
          console.error(`could not remove ${dir}: ${String(err)}`);
        }
      }
      process.exit(130);
    });
  }
}

/** A running fdproc.py that is not Node's child. */
export interface DetachedFixture {
  pid: number;
  dir: string;
  /** Number of entries in /proc/PID/fd when it became ready. */
  fds: number;
}

/** Starts fdproc.py DIR SCENARIO (many) with FDPROC_MANY=n and waits for DIR/info.json. */
export async function startDetached(n: number, scenario = 'many'): Promise<DetachedFixture> {
  if (!script) throw new Error('test/fixtures/fdproc.py not found');
  const dir = mkdtempSync(join(tmpdir(), 'fdckpt-criu-fx-'));
  trackDir(dir);
  const log = openSync(join(dir, 'log'), 'w');
  const r = spawnSync('setsid', ['-f', 'python3', script, dir, scenario], {
    stdio: ['ignore', log, log],
    env: { ...process.env, FDPROC_MANY: String(n) },
  });
  closeSync(log);
  if (r.status !== 0)
    throw new Error(`setsid -f python3 fdproc.py: exit ${r.status}, ${String(r.error ?? '')}`);
  const infoPath = join(dir, 'info.json');
  for (let waited = 0; !existsSync(infoPath); waited += 10) {
    if (waited > 60000) {
      removeDir(dir);
      throw new Error(
        `fdproc.py ${scenario} (${n}) did not start: ${readFileSync(join(dir, 'log'), 'utf8')}`,
      );
    }
    await sleep(10);
  }
  const pid = (JSON.parse(readFileSync(infoPath, 'utf8')) as { pid: number }).pid;
  live.add(pid);
  return { pid, dir, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** Waits until `pid` (ours, reparented) has ended and is reaped. */
export async function waitGone(pid: number, ms = 20000): Promise<WaitStatus> {
  for (let waited = 0; waited < ms; waited += 2) {
    const st = reap(pid);
    if (st) return st;
    await sleep(2);
  }
  throw new Error(`pid ${pid} still running ${ms} ms after it should have ended`);
}

/** SIGKILLs `pid` if it still runs and reaps it; never throws for a pid already gone. */
export async function killAndReap(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone (ESRCH): maybe still a zombie of ours, reap below.
  }
  try {
    await waitGone(pid, 5000);
    live.delete(pid);
  } catch (err) {
    // ECHILD: not ours any more (already reaped); anything else is worth seeing.
    if ((err as { code?: string }).code === 'ECHILD') live.delete(pid);
    else console.error(String(err));
  }
}

/** Removes the fixture's directory (its N files). */
export function removeFixtureDir(fx: DetachedFixture): void {
  removeDir(fx.dir);
}
