/**
 * The NodeEngine over the engine modules: cgroup discovery and freezing
 * (agent/cgroup), capture with leak detection (collect/captureCgroup), the
 * image (agent/image) and replay (agent/replay). No Kubernetes here beyond
 * the plain shapes of engine.ts.
 */
import { mkdir, rm } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import type { FdProblemReport, Leak, LeakPolicy as CrLeakPolicy, RestoreFds } from '../../api/index.js';
import { findPodCgroup, isFrozen, listTasks, type PodQos } from '../cgroup/index.js';
import { CgroupLeakError, captureCgroup, type CgroupCaptureResult } from '../collect/cgroupcapture.js';
import type { LeakPolicy } from '../collect/report.js';
import type { FdProblem } from '../capture/types.js';
import { freezeJournalOf } from '../cgroup/journal.js';
import { readImage, writeImage } from '../image/index.js';
import { isFileType, type FileType, type ImageBinding } from '../model.js';
import {
  ReplayError,
  refusalsOf,
  handOff,
  planRestore,
  stdioOfProcess,
  replayPolicy,
  type Handoff,
  type Plan,
  type ReplayMode,
  type RestorePolicy,
} from '../replay/index.js';
import { rootView } from '../linux/pathstat.js';
import { killPid } from '../linux/ptrace.js';
import type {
  CheckpointPodOutcome,
  CheckpointPodRequest,
  NodeEngine,
  PodTarget,
  RestoreIntoOutcome,
  RestoreIntoRequest,
} from './engine.js';
import { findHeldLauncher, replayIntoHeld } from './held.js';

/** A Restore's `fds` as the replay engine's mode. */
const MODES: Record<RestoreFds, ReplayMode> = { Program: 'program', Inherited: 'inherited', All: 'all' };

export interface AdapterOptions {
  /** The agent's data directory: images are only ever written and deleted below it. */
  dataDir: string;
}

function qosOf(pod: PodTarget): PodQos | undefined {
  const q = pod.qosClass?.toLowerCase();
  return q === 'guaranteed' || q === 'burstable' || q === 'besteffort' ? q : undefined;
}

/** A problem as a Checkpoint's status tells it: the way to ignore it is a field of the CR. */
function crProblemMessage(p: FdProblem): string {
  return p.ignoreType ? `${p.message} (to accept it, add ${p.ignoreType} to spec.ignore.types)` : p.message;
}

/**
 * The image must name the Checkpoint being restored: a status that points at
 * another Checkpoint's image (another tenant's, with its digest) is refused.
 */
function checkBinding(path: string, got: ImageBinding | undefined, want: ImageBinding): void {
  const show = (b: ImageBinding): string =>
    `checkpoint ${b.namespace}/${b.name} (uid ${b.uid}, pod ${b.podUid})`;
  if (!got) throw new Error(`image ${path} is not bound to a checkpoint; refusing it for ${show(want)}`);
  if (
    got.namespace !== want.namespace ||
    got.name !== want.name ||
    got.uid !== want.uid ||
    got.podUid !== want.podUid
  )
    throw new Error(`image ${path} belongs to ${show(got)}, not to ${show(want)}`);
}

/** SIGKILL to each pid (launchers, or programs already restored into them); gone is fine. */
function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      killPid(pid, 9);
    } catch {
      // already gone
    }
  }
}

/** A Checkpoint's leakPolicy as the engine's. */
const LEAK_POLICIES: Record<CrLeakPolicy, LeakPolicy> = { Fail: 'fail', Warn: 'warn', Ignore: 'ignore' };

export class EngineAdapter implements NodeEngine {
  private readonly root: string;

  constructor(options: AdapterOptions) {
    this.root = resolve(options.dataDir);
  }

  private inside(path: string): string {
    const full = resolve(path);
    // The path comes from a status field anyone with write access to it could set.
    if (!full.startsWith(this.root + sep)) {
      throw new Error(`refusing ${full}: not under the agent's data directory ${this.root}`);
    }
    return full;
  }

  isPodFrozen(podUID: string): boolean {
    try {
      return isFrozen(findPodCgroup(podUID).pod);
    } catch {
      // No cgroup: the pod is gone (a migrated source deleted), so nothing is frozen.
      return false;
    }
  }

  async checkpointPod(req: CheckpointPodRequest): Promise<CheckpointPodOutcome> {
    const { pod } = req;
    const podLabel = `${pod.namespace}/${pod.name}`;
    const cg = findPodCgroup(
      pod.uid,
      pod.containers.map((c) => c.containerID),
      { qos: qosOf(pod) },
    );
    // Which processes belong to which container, read before the freeze.
    const members = cg.containers.map((c, i) => ({
      name: pod.containers[i]!.name,
      pids: listTasks(c.cgroup).pids,
    }));
    const ignoreTypes: FileType[] = req.ignore.types.filter(isFileType);
    let result: CgroupCaptureResult;
    // The engine judges the leaks by the real policy, once: Fail refuses (no image), with what it found.
    let refused = false;
    try {
      result = await captureCgroup(cg.pod.path, {
        ignoreTypes,
        ignorePaths: req.ignore.paths,
        source: `pod ${podLabel}`,
        leakPolicy: LEAK_POLICIES[req.leakPolicy],
        after: req.afterCapture === 'Stop' ? 'leave-frozen' : 'thaw',
        // Journaled in the data directory: a restarted agent thaws it if this one dies (daemon.ts).
        freezeGuard: { journalDir: freezeJournalOf(this.root) },
      });
    } catch (err) {
      if (!(err instanceof CgroupLeakError)) throw err;
      ({ result } = err);
      refused = true;
    }
    const cp = result.checkpoint;
    if (req.binding) cp.header.binding = req.binding;
    const problems: FdProblemReport[] = result.problems.map((p) => ({
      kind: p.kind,
      pid: p.pid,
      fd: p.fd,
      message: crProblemMessage(p),
    }));
    // The runtime's stdio edges are already notes, not leaks (collect/launcher-stdio.ts).
    const inPod = { uid: pod.uid, namespace: pod.namespace, name: pod.name };
    const leaks: Leak[] = (result.leaks?.leaks ?? []).map(({ object, via, inside, outside }) => ({
      type: object.type,
      object: object.id,
      via,
      // fd -1 is the engine's "not an fd" (a whole table): the status leaves fd out.
      inside: {
        pid: inside.pid,
        comm: inside.comm,
        ...(inside.fd >= 0 ? { fd: inside.fd } : {}),
        pod: inPod,
      },
      outside,
    }));
    const tableSize = new Map(cp.tables.map((t) => [t.objref, t.fds.length]));
    const containers = members.map((m) => {
      const procs = cp.processes.filter((p) => m.pids.includes(p.pid)).sort((a, b) => a.pid - b.pid);
      const main = procs[0];
      return {
        name: m.name,
        processes: procs.length,
        fds: procs.reduce((n, p) => n + (tableSize.get(p.table) ?? 0), 0),
        ...(main ? { pid: main.pid, argv: main.argv } : {}),
      };
    });
    const { frozenMs, captureMs, frozenAt } = result.timings;
    const durations = { freezeMs: frozenMs, captureMs, ...(frozenAt !== undefined ? { frozenAt } : {}) };
    const leaksChecked = result.leaks !== undefined;
    if (req.dryRun || !req.imagePath || refused || problems.length > 0) {
      return { containers, leaksChecked, leaks, problems, durations };
    }
    const path = this.inside(req.imagePath);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const image = { path, ...(await writeImage(path, cp)) };
    return { containers, leaksChecked, leaks, problems, durations, image };
  }

  /**
   * Restores a pod whole or not at all: every container's launcher is found
   * and its plan validated (in that container's root) before any is touched;
   * a failure after the first injection kills every launcher and restored
   * process of the pod, so that it fails instead of running half-restored.
   */
  async restoreInto(req: RestoreIntoRequest): Promise<RestoreIntoOutcome> {
    const cg = findPodCgroup(
      req.pod.uid,
      req.pod.containers.map((c) => c.containerID),
      { qos: qosOf(req.pod) },
    );
    // Launchers first (cheap): while one is still starting, NotReady costs no read, hash or plan.
    const held = req.pod.containers.map((c, i) => {
      if (!req.sourcePids[c.name])
        throw new Error(`container ${c.name}: the checkpoint has no process for it`);
      return findHeldLauncher(listTasks(cg.containers[i]!.cgroup).pids);
    });
    const path = this.inside(req.imagePath);
    // One pass: the reader checks the Checkpoint's digest while it streams, before anything is planned.
    const cp = await readImage(path, { expectSha256: req.sha256 });
    checkBinding(path, cp.header.binding, req.binding);
    // The Restore's rules first, then those of its fds mode (the container keeps its own stdio).
    const listenFds = req.listenFds ?? false;
    const policy = replayPolicy(MODES[req.fds], { rules: req.policy.rules } as RestorePolicy, {
      listenFds,
      newContainer: req.newContainer ?? false,
    });
    const t0 = performance.now();
    const failed = (container: string, err: unknown): RestoreIntoOutcome => {
      killAll(held);
      if (!(err instanceof ReplayError)) throw err;
      return {
        fdsReplayed: 0,
        // Every fd the plan refused, not only the first (the status bounds the list).
        failures: refusalsOf(err).map((e) => ({
          container,
          fd: e.fd ?? -1,
          path: e.path,
          message: e.message,
        })),
        durations: { replayMs: performance.now() - t0 },
      };
    };
    const plans: Plan[] = [];
    /** Per container: what socket handoff tells the program (undefined: no handoff). */
    const handoffs: (Handoff | undefined)[] = [];
    for (const [i, c] of req.pod.containers.entries()) {
      // Paths are checked where the program will open them: in its container's root.
      const view = rootView(held[i]!);
      try {
        const source = req.sourcePids[c.name];
        const handoff = listenFds ? handOff(cp, policy, source) : undefined;
        plans.push(planRestore(handoff?.cp ?? cp, policy, source, view, stdioOfProcess(held[i]!)));
        handoffs.push(handoff);
      } catch (err) {
        return failed(c.name, err);
      } finally {
        view.close();
      }
    }
    let fds = 0;
    for (const [i, c] of req.pod.containers.entries()) {
      try {
        replayIntoHeld(held[i]!, plans[i]!, handoffs[i]);
      } catch (err) {
        return failed(c.name, err);
      }
      fds += plans[i]!.fds;
    }
    return {
      fdsReplayed: fds,
      failures: [],
      durations: { replayMs: performance.now() - t0, replayedAt: Date.now() },
    };
  }

  async deleteImage(path: string): Promise<void> {
    await rm(this.inside(path), { force: true });
  }
}
