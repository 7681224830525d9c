/**
 * A tiny FUSE server (test/fixtures/tinyfuse.c, libfuse3) started inside a
 * test cgroup, so that freezing the cgroup freezes the server: any syscall
 * that needs an answer from it then waits until the cgroup is thawed.
 * Needs gcc, libfuse3-dev, fuse3 (fusermount3) and /dev/fuse: npm's pretest
 * installs them (scripts/ensure-fuse.sh). Missing, they fail under CI=true and
 * are skipped loudly elsewhere.
 */
import { describe } from '@jest/globals';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const SOURCE = fileURLToPath(new URL('../fixtures/tinyfuse.c', import.meta.url));

/** What is missing for the FUSE tests, or undefined when all is there. */
export function fuseMissing(): string | undefined {
  if (!existsSync('/dev/fuse')) return '/dev/fuse';
  const need: [string, string[]][] = [
    ['gcc', ['--version']],
    ['pkg-config', ['--exists', 'fuse3']],
    ['fusermount3', ['-V']],
  ];
  for (const [cmd, args] of need) {
    const r = spawnSync(cmd, args, { stdio: 'ignore' });
    if (r.status !== 0) return cmd === 'pkg-config' ? 'libfuse3-dev (pkg-config fuse3)' : cmd;
  }
  return undefined;
}

/** `describe` when FUSE can be tested, `describe.skip` (said on stderr) when not; throws under CI. */
export function describeWithFuse(suite: string): typeof describe | typeof describe.skip {
  const missing = fuseMissing();
  if (missing === undefined) return describe;
  const message = `test prerequisite missing: ${missing} (run scripts/ensure-fuse.sh: apt-get install fuse3 libfuse3-dev gcc pkg-config)`;
  if (process.env['CI'] === 'true') throw new Error(message);
  process.stderr.write(`${suite}: SKIPPED, ${message}\n`);
  return describe.skip;
}

/** Builds the fixture once per source version; returns the binary. */
export function tinyFuseBinary(): string {
  const src = readFileSync(SOURCE);
  const dir = join(tmpdir(), 'fdckpt-tinyfuse');
  mkdirSync(dir, { recursive: true });
  const bin = join(dir, `tinyfuse-${createHash('sha256').update(src).digest('hex').slice(0, 12)}`);
  if (existsSync(bin)) return bin;
  const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'fuse3'], { encoding: 'utf8' })
    .trim()
    .split(/\s+/);
  execFileSync('gcc', ['-O2', '-Wall', '-o', `${bin}.tmp`, SOURCE, ...flags]);
  execFileSync('mv', [`${bin}.tmp`, bin]);
  return bin;
}

/** A mounted tiny FUSE file system served from inside a cgroup. */
export interface TinyFuse {
  /** The mount point; its one file is `${mnt}/f`. */
  mnt: string;
  server: ChildProcess;
  /** Thaw first: unmount lazily, kill the server, remove the mount point. */
  stop(): Promise<void>;
}

function mounted(mnt: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === mnt && / - fuse/.test(l));
}

/** Starts the server in `cgroupDir` (joined before exec); resolves once mounted. */
export async function startTinyFuse(cgroupDir: string): Promise<TinyFuse> {
  const bin = tinyFuseBinary();
  const mnt = mkdtempSync(join(tmpdir(), 'fdckpt-fuse-'));
  // -f: stay in the foreground (the pid we put in the cgroup is the server); -s: one thread.
  const server = spawn(
    'sh',
    ['-c', `echo $$ > ${join(cgroupDir, 'cgroup.procs')} && exec "$0" -f -s "$1"`, bin, mnt],
    { stdio: 'ignore' },
  );
  const stop = async (): Promise<void> => {
    spawnSync('fusermount3', ['-u', '-z', mnt], { stdio: 'ignore' });
    if (server.exitCode === null && server.signalCode === null) {
      const gone = new Promise((r) => server.once('exit', r));
      server.kill('SIGKILL');
      await gone;
    }
    rmSync(mnt, { recursive: true, force: true });
  };
  for (let i = 0; i < 500 && !mounted(mnt); i++) {
    if (server.exitCode !== null) break;
    await sleep(10);
  }
  if (!mounted(mnt)) {
    await stop();
    throw new Error(`tinyfuse did not mount ${mnt} in 5 s (exit ${server.exitCode})`);
  }
  return { mnt, server, stop };
}
