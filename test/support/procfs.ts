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
