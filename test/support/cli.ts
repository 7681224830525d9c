/** Runs the real, built `fdckpt` binary (npm test builds dist/ first). */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/fdckpt.js', import.meta.url));
const dist = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  status: number | null;
  /** The signal that ended the CLI, if one did (a crash shows here, with status null). */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function fdckpt(...args: string[]): CliResult {
  if (!existsSync(dist)) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    // The default 1 MiB would kill a CLI whose output grows with the host (leaks --json).
    maxBuffer: 256 << 20,
  });
  if (r.error) throw new Error(`fdckpt ${args.join(' ')}: ${r.error.message}`);
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}
