/** Ground truth read straight from /proc and kcmp, to compare captures against. */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { KCMP_FILE, kcmp } from '../../src/agent/linux/kcmp.js';

export interface ProcFd {
  fd: number;
  flags: number;
  pos: number;
  link: string;
}

export function procFds(pid: number): ProcFd[] {
  return readdirSync(`/proc/${pid}/fd`)
    .map(Number)
    .sort((a, b) => a - b)
    .map((fd) => {
      const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      return {
        fd,
        flags: parseInt(/^flags:\s*(\d+)/m.exec(info)![1]!, 8),
        pos: Number(/^pos:\s*(\d+)/m.exec(info)![1]),
        link: readlinkSync(`/proc/${pid}/fd/${fd}`),
      };
    });
}

/** Groups of fds (across pids) that are one open file, by all-pairs kcmp: the slow, obvious truth. */
export function sharingTruth(fds: { pid: number; fd: number }[]): Set<string> {
  const pairs = new Set<string>();
  for (let i = 0; i < fds.length; i++) {
    for (let j = i + 1; j < fds.length; j++) {
      const a = fds[i]!;
      const b = fds[j]!;
      if (kcmp(a.pid, b.pid, KCMP_FILE, a.fd, b.fd) === 0) pairs.add(`${a.pid}:${a.fd}=${b.pid}:${b.fd}`);
    }
  }
  return pairs;
}

/** One read of a live table: an fd closed between readdir and readlink is simply not there. */
function readFdTable(pid: number): Record<string, string> {
  const table: Record<string, string> = {};
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      table[fd] = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return table;
}

/**
 * The table of a process that has settled. /proc/PID/exe names the new program before
 * exec has closed the close-on-exec fds, and the program may open and close a locale
 * file before it sleeps: a single read can catch either. Two reads 20 ms apart that agree
 * are the table the process keeps.
 */
export function fdTable(pid: number): Record<string, string> {
  let last = readFdTable(pid);
  for (let round = 0; round < 50; round++) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    const next = readFdTable(pid);
    if (JSON.stringify(next) === JSON.stringify(last)) return next;
    last = next;
  }
  throw new Error(`the fd table of pid ${pid} did not settle within 1 s`);
}
