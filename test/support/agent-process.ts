/**
 * A node agent run as its own process — the real `fdckpt agent` CLI from
 * dist/ — so that a test can SIGKILL it mid-work and start it again, as a
 * DaemonSet restarts a crashed agent pod.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface AgentProcess {
  node: string;
  /** The current process's pid (a new one after each start). */
  readonly pid: number | undefined;
  /** SIGKILL: no graceful stop, whatever it was doing; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Start it again with the same arguments; resolves once it serves. */
  start(): Promise<void>;
  /** SIGTERM, then SIGKILL if it is still there after 10 s. */
  stop(): Promise<void>;
}

export interface AgentProcessOptions {
  /** The repository root (bin/fdckpt.js, dist/). */
  root: string;
  kubeconfigPath: string;
  /** Its token for the other agents' transfer servers (--transfer-token-file). */
  transferTokenFile: string;
  node: string;
  dataDir: string;
}

/** Logged by `fdckpt agent` once its loops and servers run (src/cli/commands/agent.ts). */
const SERVING = '"msg":"agent for node ';

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Fails (never skips) when dist/ is missing. */
export async function startAgentProcess(options: AgentProcessOptions): Promise<AgentProcess> {
  const bin = join(options.root, 'bin', 'fdckpt.js');
  if (!existsSync(join(options.root, 'dist', 'cli', 'main.js')))
    throw new Error('test prerequisite missing: dist/ (run npm run build)');
  let child: ChildProcess | undefined;
  // The last of its log, for the error when it does not come up.
  let tail = '';
  const start = (): Promise<void> =>
    new Promise((resolve, reject) => {
      tail = '';
      const p = spawn(
        process.execPath,
        [
          bin,
          'agent',
          '--kubeconfig',
          options.kubeconfigPath,
          '--node',
          options.node,
          '--data-dir',
          options.dataDir,
          '--port',
          '0',
          '--transfer-port',
          '0',
          '--transfer-token-file',
          options.transferTokenFile,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      child = p;
      const timer = setTimeout(() => {
        p.kill('SIGKILL');
        reject(new Error(`fdckpt agent for ${options.node} did not start in 30 s: ${tail}`));
      }, 30_000);
      // Read its log all along: a full pipe would block the agent.
      p.stderr?.on('data', (d: Buffer) => {
        tail = (tail + d.toString()).slice(-4096);
        if (tail.includes(SERVING)) {
          clearTimeout(timer);
          resolve();
        }
      });
      p.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`fdckpt agent for ${options.node} exited (${code ?? signal ?? ''}): ${tail}`));
      });
    });
  const signal = async (sig: NodeJS.Signals, graceMs?: number): Promise<void> => {
    const p = child;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill(sig);
    if (graceMs === undefined) return exited(p);
    const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
    await exited(p);
    clearTimeout(timer);
  };
  await start();
  return {
    node: options.node,
    get pid() {
      return child?.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    kill: () => signal('SIGKILL'),
    start,
    stop: () => signal('SIGTERM', 10_000),
  };
}
