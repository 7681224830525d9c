/**
 * The flags that name a pod's cgroup on the command line, shared by leaks,
 * preflight and capture: `--cgroup PATH`, or `--pod-uid UID [--container ID ...]`
 * (the kubelet layouts). With containers, the pod is frozen but only those
 * containers are captured, and they are the boundary of the leak check.
 * The options themselves are declared in specs.ts (TARGET).
 */
import { resolve } from 'node:path';
import { installEmergencyThaw, setFreezeDefaults, freezeJournalDir } from '../agent/cgroup/freeze.js';
import { thawOrphans } from '../agent/cgroup/journal.js';
import { findPodCgroup } from '../agent/cgroup/pod.js';
import { type ParsedArgs, UsageError, single } from './command.js';

/**
 * Before a command freezes: thaw on SIGINT/SIGTERM/exit, journal in the
 * agent's journal (or --freeze-journal) so that a killed run is thawed by the
 * next run or the agent, and thaw what a killed earlier run left frozen.
 * `--freeze-journal DIR`: where freezes are journaled (default: the agent's, /var/lib/fdckpt/freezes).
 */
export function prepareFreezing(parsed: ParsedArgs): void {
  const dir = single(parsed, 'freeze-journal');
  if (dir !== undefined) setFreezeDefaults({ journalDir: resolve(dir) });
  installEmergencyThaw();
  for (const o of thawOrphans(freezeJournalDir())) {
    if (o.outcome === 'thawed' || o.outcome === 'refused')
      process.stderr.write(
        `freeze journal: cgroup ${o.cgroup} ${o.outcome}${o.detail ? ` (${o.detail})` : ''}\n`,
      );
  }
}

/** What the flags name: the cgroup to freeze, and (with --container) the ones to capture. */
export interface CgroupTarget {
  path: string;
  only: string[];
}

/** The cgroup the flags name, or undefined when none of them is given. */
export function cgroupTarget(parsed: ParsedArgs, usage: string): CgroupTarget | undefined {
  const cgroup = single(parsed, 'cgroup');
  const uid = single(parsed, 'pod-uid');
  const containers = parsed.flags.get('container') ?? [];
  if (cgroup !== undefined && uid !== undefined)
    throw new UsageError(`give --cgroup or --pod-uid, not both; usage: fdckpt ${usage}`);
  if (containers.length > 0 && uid === undefined) throw new UsageError('--container needs --pod-uid');
  if (uid !== undefined) {
    const pod = findPodCgroup(uid, containers);
    return { path: pod.pod.path, only: pod.containers.map((c) => c.cgroup.path) };
  }
  return cgroup === undefined ? undefined : { path: cgroup, only: [] };
}
