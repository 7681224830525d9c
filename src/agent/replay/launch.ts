/**
 * Starts the process a table is restored into, through native fdckpt-hold
 * (see docs/adr/0003-replay-launcher.md): Node spawns the waiter, the waiter
 * forks the held process and reports its pid on fd 3. The held process is
 * Node's grandchild, so libuv never waits for it and never steals its ptrace
 * stops; the waiter's exit status is the restored program's.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Path of the launcher binary: $FDCKPT_HOLD, else native/build/fdckpt-hold in
 * the nearest enclosing directory that has one (src/, dist/ and build/ layouts).
 */
export function holdPath(): string {
  const fromEnv = process.env['FDCKPT_HOLD'];
  if (fromEnv) return fromEnv;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'native', 'build', 'fdckpt-hold');
    if (fs.existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  return 'fdckpt-hold';
}

/** A launched, still held process and the waiter that will report its exit. */
export interface HeldProcess {
  /** The held process: replay's tracee, later the restored program. Signal this one. */
  pid: number;
  /**
   * fdckpt-hold's waiting parent (this process's child). It forwards SIGTERM and
   * SIGHUP to the program; killing it with anything else orphans the program.
   */
  waiter: ChildProcess;
  /** Resolves to the restored program's exit status (128+N when killed by signal N). */
  exit: Promise<number>;
}

/** Options for launchHeld. */
export interface LaunchOptions {
  /** stdio of the waiter (and so of the held process before its table is replaced). */
  stdio?: 'inherit' | 'ignore';
  /** Seconds the held process waits for the restorer before giving up (exit 125). */
  timeoutSeconds?: number;
  /** Socket handoff: run the launcher with --listen-fds (it sets LISTEN_FDS/PID/FDNAMES at release). */
  listenFds?: boolean;
  /**
   * The file to exec, when it is not what cmd[0] resolves to: cmd is then the whole
   * argv, argv[0] included (fdckpt-hold --exec; a multi-call binary run by another name).
   */
  file?: string;
  /** Variables added to the environment CMD is started with. */
  env?: Record<string, string>;
}

/** Spawns fdckpt-hold for `cmd` and resolves once the held process's pid is known. */
export async function launchHeld(cmd: readonly string[], options: LaunchOptions = {}): Promise<HeldProcess> {
  if (cmd.length === 0) throw new Error('no command to restore into');
  const hold = holdPath();
  if (hold.includes('/') && !fs.existsSync(hold))
    throw new Error(`launcher ${hold} is missing: run npm run build:native`);
  const io = options.stdio ?? 'inherit';
  const stdio: StdioOptions = [io, io, io, 'pipe'];
  const args = [
    '--timeout',
    String(options.timeoutSeconds ?? 30),
    ...(options.listenFds ? ['--listen-fds'] : []),
    ...(options.file === undefined ? [] : ['--exec', options.file]),
  ];
  const env = options.env ? { ...process.env, ...options.env } : process.env;
  const waiter = spawn(hold, [...args, '--', ...cmd], { stdio, env });
  const exit = new Promise<number>((resolve, reject) => {
    waiter.once('error', reject);
    waiter.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
  exit.catch(() => undefined);
  const report = waiter.stdio[3] as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of report) text += String(chunk);
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) {
    const status = await exit;
    throw new Error(`launcher ${hold} did not report a pid (exit status ${status})`);
  }
  return { pid, waiter, exit };
}
