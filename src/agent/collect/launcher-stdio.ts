/**
 * The one rule about stdio that the operator and the CLI (leaks, preflight,
 * capture) share. A container's fds 0-2 are held at their other end by what
 * started it: the container runtime's shim (it is what `kubectl logs` reads),
 * the process kubelet, or the shell that launched the cgroup. That edge crosses
 * the boundary by construction, no checkpoint can avoid it, and a restore gives
 * the new process its own stdio (replay's `inherit`): it is a note, not a leak.
 * Only the direct parent counts, and only for fds 0-2: any other holder of the
 * same pipe is still a leak.
 */
import { readProcStat } from '../linux/procstat.js';
import type { Leak, LeakReport, Note } from './report.js';

/** The parents of `pids` that are not among them (pid 1 never: it adopts orphans, it launched nothing). */
export function launchersOf(pids: readonly number[]): Map<number, string> {
  const inside = new Set(pids);
  const launchers = new Map<number, string>();
  for (const pid of pids) {
    const ppid = readProcStat(pid)?.ppid;
    if (ppid === undefined || ppid <= 1 || inside.has(ppid) || launchers.has(ppid)) continue;
    launchers.set(ppid, readProcStat(ppid)?.comm ?? '?');
  }
  return launchers;
}

function isLauncherStdio(leak: Leak, launchers: ReadonlyMap<number, string>): boolean {
  return leak.inside.fd >= 0 && leak.inside.fd <= 2 && launchers.has(leak.outside.pid);
}

/** `report` with the launchers' stdio edges moved from leaks to notes (kind launcher-stdio). */
export function excuseLauncherStdio(report: LeakReport, launchers: ReadonlyMap<number, string>): LeakReport {
  const leaks: Leak[] = [];
  const notes: Note[] = [];
  for (const leak of report.leaks) {
    if (!isLauncherStdio(leak, launchers)) {
      leaks.push(leak);
      continue;
    }
    notes.push({
      kind: 'launcher-stdio',
      object: leak.object,
      inside: leak.inside,
      outside: leak.outside,
      detail: `fd ${leak.inside.fd} is the stdio that pid ${leak.outside.pid} (${leak.outside.comm}) started the process with: expected, and a restore gives the new process its own`,
    });
  }
  return { ...report, leaks, notes: [...notes, ...report.notes] };
}
