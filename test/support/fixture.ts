/**
 * Real processes for engine tests: test/fixtures/fdproc.py sets up the fds of
 * the named scenarios, writes what it did to DIR/info.json, and waits to be killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

// From test/support in jest, or from build/test/support when benchmarks run compiled.
const script = ['../fixtures/fdproc.py', '../../../test/fixtures/fdproc.py']
  .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
  .find((p) => existsSync(p))!;

export interface Fixture {
  pid: number;
  dir: string;
  /** What fdproc.py reported: fd numbers by role, and extras (threads, child pid, ...). */
  info: Record<string, number | number[] | string>;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startFixture(scenarios: string[], env: Record<string, string> = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'fdckpt-fx-'));
  const log = openSync(join(dir, 'log'), 'w');
  // stdin /dev/null, stdout/stderr a file: node's own stdio pipes are socketpairs we do not want to see.
  const child = spawn('python3', [script, dir, ...scenarios], {
    stdio: ['ignore', log, log],
    env: { ...process.env, ...env },
  });
  closeSync(log);
  let exited = false;
  child.once('exit', () => (exited = true));
  const infoPath = join(dir, 'info.json');
  for (let waited = 0; !existsSync(infoPath); waited += 10) {
    if (exited || waited > 20000) {
      const out = readFileSync(join(dir, 'log'), 'utf8');
      child.kill('SIGKILL');
      throw new Error(`fdproc.py ${scenarios.join(' ')} did not start: ${out}`);
    }
    await sleep(10);
  }
  const info = JSON.parse(readFileSync(infoPath, 'utf8')) as Fixture['info'];
  return {
    pid: child.pid!,
    dir,
    info,
    child,
    stop: async () => {
      if (!exited) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fd number the fixture reported. */
export function fdOf(fx: Fixture, role: string): number {
  const v = fx.info[role];
  if (typeof v !== 'number') throw new Error(`fixture has no fd ${role}`);
  return v;
}
