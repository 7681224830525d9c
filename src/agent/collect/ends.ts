/** The two ends of a reported edge, with per-pid facts (comm, cgroup, pod) read once. */
import { readFileSync } from 'node:fs';
import { cgroupOfPid } from '../cgroup/cgroup.js';
import { podUidOfCgroup } from '../cgroup/pod.js';
import type { PodFd } from './podview.js';
import type { InsideEnd, OutsideEnd, PodNamer } from './report.js';

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trimEnd();
  } catch {
    return '?';
  }
}

/** Builds report ends, caching per-pid facts. */
export class Ends {
  private readonly comms = new Map<number, string>();
  private readonly holders = new Map<number, OutsideEnd>();

  constructor(private readonly podName?: PodNamer) {}

  private commOf(pid: number): string {
    let c = this.comms.get(pid);
    if (c === undefined) this.comms.set(pid, (c = comm(pid)));
    return c;
  }

  /** A pod fd (fd -1: a whole table or a mapping). */
  inside(h: PodFd): InsideEnd {
    return { pid: h.pid, fd: h.fd, comm: this.commOf(h.pid) };
  }

  /** An outside holder: its comm, cgroup and, when the cgroup is a pod's, the pod. */
  outside(pid: number, fd?: number): OutsideEnd {
    let base = this.holders.get(pid);
    if (base === undefined) {
      const cgroup = cgroupOfPid(pid);
      base = { pid, comm: this.commOf(pid), cgroup };
      const uid = podUidOfCgroup(cgroup);
      if (uid !== undefined) base.pod = { uid, ...this.podName?.(uid) };
      this.holders.set(pid, base);
    }
    return fd === undefined ? { ...base } : { ...base, fd };
  }
}
