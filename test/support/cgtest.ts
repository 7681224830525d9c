/**
 * Real cgroups and real processes for engine tests: make a scratch cgroup in the
 * v2 (or v1 freezer) hierarchy, start scripts inside it, and tear it all down.
 * We are root; if cgroups are not writable the tests fail (in CI) saying so.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  writeFileSync,
  existsSync,
  readdirSync,
} from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { cgroupMounts } from '../../src/agent/cgroup/mounts.js';

/** Absolute python3 binary (pyenv shims are shell scripts; we want the real pid to be python). */
export const PYTHON: string =
  spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout?.trim() ||
  'python3';

/** Fails with a clear message when the hierarchy needed is missing. */
export function requireMount(kind: 'v2' | 'v1'): string {
  const m = cgroupMounts();
  const root = kind === 'v2' ? m.v2 : m.v1Freezer;
  if (root === undefined)
    throw new Error(`test prerequisite missing: no ${kind === 'v2' ? 'cgroup2' : 'v1 freezer'} mount`);
  return root;
}

/** Creates a scratch cgroup (and parents) under the given hierarchy; returns its absolute dir. */
export function makeCgroup(
  kind: 'v2' | 'v1',
  rel = `/fdckpt-test-${randomBytes(4).toString('hex')}`,
): string {
  const dir = join(requireMount(kind), rel);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Kills every task in the cgroup tree (thawing it first) and removes the directories. */
export async function destroyCgroup(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const sub of readdirSync(dir, { withFileTypes: true })) {
    if (sub.isDirectory()) await destroyCgroup(join(dir, sub.name));
  }
  if (existsSync(join(dir, 'cgroup.freeze'))) writeFileSync(join(dir, 'cgroup.freeze'), '0');
  if (existsSync(join(dir, 'freezer.state'))) writeFileSync(join(dir, 'freezer.state'), 'THAWED');
  for (let i = 0; i < 200; i++) {
    const pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  for (let i = 0; i < 100; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** A started script: its process and the lines it printed (to read pids and fds it reports). */
export interface Started {
  child: ChildProcess;
  pid: number;
  /** The first line the script printed (scripts print one JSON line when ready). */
  ready: string;
}

/**
 * Prepended to every script: drop fds inherited from the test runner's
 * environment (they would be real leaks), and give scripts `ready(obj)`, which
 * prints one JSON line on the original stdout and then points stdio at
 * /dev/null, so that the runner's pipes are not held by the process either.
 */
const PRELUDE = `
import os as _os, json as _json
_os.closerange(3, 65536)
def ready(obj):
    line = (_json.dumps(obj) + "\\n").encode()
    out = _os.dup(1)
    null = _os.open("/dev/null", _os.O_RDWR)
    for fd in (0, 1, 2):
        _os.dup2(null, fd)
    _os.close(null)
    _os.write(out, str(out).encode() + b" " + line)
    _os.close(out)
`;

/**
 * Starts a python script; `cgroupDir` (optional) is joined before exec, so the
 * process is inside from its first instruction. Resolves when it prints a line.
 */
export function startPython(script: string, cgroupDir?: string): Promise<Started> {
  const exec = `exec ${PYTHON} -u -c "$1"`;
  const sh = cgroupDir ? `echo $$ > ${join(cgroupDir, 'cgroup.procs')} && ${exec}` : exec;
  const child = spawn('sh', ['-c', sh, 'sh', PRELUDE + script], { stdio: ['pipe', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    let done = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0 || done) return;
      done = true;
      const line = out.slice(0, nl);
      // ready() prefixes the fd it wrote through; wait until the script has closed it,
      // so that tests see the fd table the script meant, not this handshake's fd.
      const m = /^(\d+) (.*)$/.exec(line);
      if (!m) return resolve({ child, pid: child.pid!, ready: line });
      void untilClosed(child.pid!, Number(m[1])).then(() =>
        resolve({ child, pid: child.pid!, ready: m[2]! }),
      );
    });
    child.on('exit', (code) => reject(new Error(`script exited (${code}) before ready: ${err}`)));
  });
}

async function untilClosed(pid: number, fd: number): Promise<void> {
  const path = `/proc/${pid}/fd/${fd}`;
  const before = (): string | undefined => {
    try {
      return readlinkSync(path);
    } catch {
      return undefined;
    }
  };
  const first = before();
  while (first !== undefined && before() === first) await new Promise((r) => setTimeout(r, 1));
}

/** Kills started scripts (SIGKILL) and waits for them to exit. */
export async function killAll(started: Started[]): Promise<void> {
  await Promise.all(
    started.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve();
          s.child.once('exit', () => resolve());
          s.child.kill('SIGKILL');
        }),
    ),
  );
  started.length = 0;
}
