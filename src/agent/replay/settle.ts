/**
 * Waiting for a just-restored program to settle. Right after the detach its
 * dynamic loader opens and closes files at the lowest free fds; whoever reads
 * its table at that moment (a capture, to compare) can see fds come and go.
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { readProcStat } from '../linux/procstat.js';

function snapshot(pid: number): string {
  const stat = readProcStat(pid);
  if (!stat) throw new Error(`pid ${pid} is gone`);
  return `${stat.state} ${fs.readdirSync(`/proc/${pid}/fd`).join(',')}`;
}

/**
 * Resolves once `pid` is blocked (state S) with the same fd list on two polls
 * `intervalMs` apart: started up and waiting for something. Throws after
 * `timeoutMs`, or when the process is gone.
 */
export async function waitSettled(pid: number, timeoutMs = 5000, intervalMs = 10): Promise<void> {
  let last = '';
  for (let waited = 0; waited <= timeoutMs; waited += intervalMs) {
    const now = snapshot(pid);
    if (now.startsWith('S ') && now === last) return;
    last = now;
    await sleep(intervalMs);
  }
  throw new Error(`pid ${pid} did not settle within ${timeoutMs} ms`);
}
