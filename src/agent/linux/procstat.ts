/**
 * /proc/PID/stat, parsed once for everyone. comm (field 2) may hold spaces and
 * parentheses, so the fields after it are counted from the last ')'.
 */
import { readFileSync } from 'node:fs';

export interface ProcStat {
  comm: string;
  /** Field 3: R, S, D, T, t, Z, ... */
  state: string;
  /** Field 4. */
  ppid: number;
  /** Field 22, in clock ticks since boot, as text (it only has to be compared). */
  startTime: string;
}

/** The parsed stat line of `pid`, or undefined when the process is gone (or unreadable). */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  return {
    comm: text.slice(text.indexOf('(') + 1, close),
    state: fields[0] ?? '',
    ppid: Number(fields[1]),
    startTime: fields[19] ?? '',
  };
}
