/**
 * Leak detection (the seed's `collect`): which objects of a captured pod are
 * referenced from outside it, or reference something outside it. See
 * docs/leaks.md for the model.
 *
 * The pod side comes from a capture (podview.ts, indexed in podindex.ts). The
 * host side is one fast scan of every other process's fd table (hostscan.ts)
 * for the pod's keys; each hit is then classified (classify.ts), same open
 * files confirmed with kcmp against the pod's files (kcmpsearch.ts).
 */
import type { Checkpoint } from '../model.js';
import { Classifier } from './classify.js';
import { Ends } from './ends.js';
import { scanHostParallel } from './scanpool.js';
import { inodeNotes } from './inodenotes.js';
import { PodIndex } from './podindex.js';
import { fillUnixPeers } from '../capture/unix-peers.js';
import { podFiles, type PodFd, type PodFile } from './podview.js';
import type { LeakReport, PodNamer } from './report.js';

/** Options of findLeaks(). */
export interface LeakOptions {
  /**
   * Copies of the pod's open files in this process (objref → fd), taken while
   * the pod was frozen (pin.ts): kcmp compares against them, so the pod may
   * run again during the host scan without changing the answer.
   */
  pinned?: ReadonlyMap<number, number>;
  /** Names a pod by UID for reports; without it, holders in pods carry their UID only. */
  podName?: PodNamer;
  /** Extra pids to leave out of the scan (ours is always left out). */
  exclude?: readonly number[];
  /** Threads for the host scan (default: the CPUs, at most 4). */
  threads?: number;
  /** Also look at memory mappings and file locks (notes only). Default true. */
  inodeNotes?: boolean;
}

/**
 * Finds every edge between the captured pod (`cp`, processes `podPids`) and
 * the rest of the host. `podPids` are all the pod's tasks (they are left out
 * of the scan); the checkpoint's socket records gain their unix peers.
 */
export function findLeaks(cp: Checkpoint, podPids: readonly number[], options: LeakOptions = {}): LeakReport {
  const warnings: string[] = [];
  fillUnixPeers(cp, podPids, warnings);
  const files = podFiles(cp);
  const ends = new Ends(options.podName);
  const rep = (pf: PodFile): PodFd => {
    const pinned = options.pinned?.get(pf.file.objref);
    return pinned !== undefined ? { pid: process.pid, fd: pinned } : pf.holders[0]!;
  };
  const notesWanted = options.inodeNotes !== false;
  const idx = new PodIndex(files.values(), rep, notesWanted ? cp.processes.map((p) => p.pid) : []);

  const exclude = new Set([...podPids, process.pid, ...(options.exclude ?? [])]);
  const scan = scanHostParallel(idx.targets, exclude, options.threads);

  const classifier = new Classifier(idx, files, ends);
  for (const hit of scan.hits) classifier.classify(hit);
  classifier.sharedTables(cp);
  const notes = classifier.notes;
  if (notesWanted) notes.push(...inodeNotes(files.values(), exclude, ends));

  for (const pid of scan.unreadable) {
    warnings.push(`pid ${pid} (${ends.outside(pid).comm}): fd table not readable, not scanned`);
  }
  for (const f of idx.search.failures) {
    warnings.push(`could not compare with the pod's files, taken as different: ${f}`);
  }
  return {
    leaks: classifier.leaks,
    notes,
    scanned: {
      processes: scan.processes,
      fds: scan.fds,
      ms: scan.ms,
      candidates: scan.hits.length,
      threads: scan.threads,
    },
    warnings,
  };
}
