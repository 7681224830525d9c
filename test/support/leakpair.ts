/** The two-cgroup leak fixture (test/fixtures/leakpair.py): start it, read what it set up, tear it down. */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { destroyCgroup, makeCgroup, PYTHON } from './cgtest.js';

const script = fileURLToPath(new URL('../fixtures/leakpair.py', import.meta.url));

export interface LeakPair {
  /** The "pod" cgroup (absolute v2 dir) holding the child, and the outside one holding the parent. */
  podDir: string;
  outDir: string;
  tmp: string;
  child: number;
  inside: Record<string, number>;
  outside: Record<string, number>;
  stop(): Promise<void>;
}

/** Starts the pair; `dirs` places it in existing cgroups (which stop() then removes too). */
export async function startLeakPair(dirs?: { podDir: string; outDir: string }): Promise<LeakPair> {
  const podDir = dirs?.podDir ?? makeCgroup('v2');
  const outDir = dirs?.outDir ?? makeCgroup('v2');
  const tmp = mkdtempSync(join(tmpdir(), 'fdckpt-leaks-'));
  const infoPath = join(tmp, 'info.json');
  const log = openSync(join(tmp, 'log'), 'w');
  const sh = `echo $$ > ${outDir}/cgroup.procs && exec ${PYTHON} "$@"`;
  const parent = spawn('sh', ['-c', sh, 'sh', script, podDir, tmp, infoPath], {
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const stop = async (): Promise<void> => {
    await destroyCgroup(podDir);
    await destroyCgroup(outDir);
    rmSync(tmp, { recursive: true, force: true });
  };
  for (let i = 0; !existsSync(infoPath); i++) {
    if (i > 1000 || parent.exitCode !== null) {
      const out = readFileSync(join(tmp, 'log'), 'utf8');
      await stop();
      throw new Error(`leakpair.py did not start: ${out}`);
    }
    await sleep(10);
  }
  const info = JSON.parse(readFileSync(infoPath, 'utf8')) as Pick<LeakPair, 'child' | 'inside' | 'outside'>;
  return { podDir, outDir, tmp, ...info, stop };
}
