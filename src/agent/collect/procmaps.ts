/**
 * Memory mappings and file locks, the two references to files that do not go
 * through an fd: /proc/PID/maps (a mapping keeps its file open after close())
 * and /proc/locks (who holds a lock on which inode).
 */
import { readFileSync } from 'node:fs';
import { makeDev } from '../linux/devt.js';
import { inodeKey } from '../procfs/keys.js';

/** The inode keys of the files a process maps (anonymous mappings skipped), deduplicated. */
export function mappedInodes(pid: number): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/maps`, 'latin1');
  } catch {
    return new Map(); // gone, or a kernel thread
  }
  const out = new Map<string, string>();
  // 7f12a000-7f12b000 r--p 00000000 08:01 1234      /usr/lib/libc.so.6
  for (const line of text.split('\n')) {
    const m = /^\S+ \S+ \S+ ([0-9a-f]+):([0-9a-f]+) (\d+)\s*(.*)$/.exec(line);
    if (!m || m[3] === '0') continue;
    const key = inodeKey(makeDev(parseInt(m[1]!, 16), parseInt(m[2]!, 16)), m[3]!);
    if (!out.has(key)) out.set(key, m[4] ?? '');
  }
  return out;
}

/** One lock from /proc/locks. */
export interface LockEntry {
  /** POSIX, FLOCK, OFDLCK, LEASE, ... */
  kind: string;
  access: string;
  /** Holder pid as the kernel prints it (-1 for OFD locks and leases without one). */
  pid: number;
  key: string;
  line: string;
}

/** Granted locks (blocked waiters, the `->` lines, are left out). */
export function readLocks(): LockEntry[] {
  let text: string;
  try {
    text = readFileSync('/proc/locks', 'latin1');
  } catch {
    return [];
  }
  const out: LockEntry[] = [];
  // 1: POSIX  ADVISORY  WRITE 1234 08:01:5678 0 EOF
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+\S+\s+(\S+)\s+(-?\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (!m) continue;
    out.push({
      kind: m[1]!,
      access: m[2]!,
      pid: Number(m[3]),
      key: inodeKey(makeDev(parseInt(m[4]!, 16), parseInt(m[5]!, 16)), m[6]!),
      line: line.trim(),
    });
  }
  return out;
}
