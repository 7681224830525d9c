/** Per-process facts from /proc: thread group, comm, argv, cwd, exe, fd list. */
import { readFileSync, readlinkSync } from 'node:fs';

export interface ProcFacts {
  tgid: number;
  comm: string;
  argv: string[];
  cwd: string;
  /** undefined when /proc/PID/exe cannot be read (a kernel thread, or no permission). */
  exe?: string;
}

function readExe(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

export function readProcFacts(pid: number): ProcFacts {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const tgid = Number(/^Tgid:\s*(\d+)/m.exec(status)?.[1] ?? pid);
  const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').replace(/\n$/, '');
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  const argv = cmdline === '' ? [] : cmdline.replace(/\0$/, '').split('\0');
  const cwd = readlinkSync(`/proc/${pid}/cwd`);
  const exe = readExe(pid);
  return exe === undefined ? { tgid, comm, argv, cwd } : { tgid, comm, argv, cwd, exe };
}
