/** The shapes of a leak report (also the JSON that `fdckpt leaks --json` prints). */
import type { FdProblem } from '../capture/types.js';
import type { SameObjectVia } from '../filetypes/types.js';

/** The object a leak or note is about. */
export interface LeakObject {
  /** File type (pipe, socket, tty, fifo, regular, eventfd, ...) or 'files' for a whole fd table. */
  type: string;
  /** `pipe:[1234]`, `socket:[77]`, `pty:26:3`, a path, or `files of pid P`. */
  id: string;
}

/** The pod-side end of an edge. */
export interface InsideEnd {
  pid: number;
  /** The pod fd; -1 when the edge is a whole fd table. */
  fd: number;
  comm: string;
}

/**
 * The pod a holder's cgroup belongs to: its UID always (from the kubelet's cgroup
 * layout), its namespace and name when a resolver knew them (LeakOptions.podName).
 */
export interface PodRef {
  uid: string;
  namespace?: string;
  name?: string;
}

/** Names a pod by its UID (the agent knows its node's pods); undefined when it does not know it. */
export type PodNamer = (uid: string) => { namespace: string; name: string } | undefined;

/** A pod for people: `NS/NAME`, or its UID when no name is known. */
export function podLabel(pod: PodRef): string {
  return pod.namespace !== undefined && pod.name !== undefined ? `${pod.namespace}/${pod.name}` : pod.uid;
}

/** The holder outside the pod. */
export interface OutsideEnd {
  pid: number;
  /** The outside fd; absent for mappings and locks. */
  fd?: number;
  comm: string;
  /** Its cgroup (v2 path, or v1 freezer path on hybrid hosts). */
  cgroup: string;
  /** The pod, when the cgroup belongs to one; absent for host processes. */
  pod?: PodRef;
}

/** Where an outside holder lives, for people: `pod NS/NAME` (or `pod UID`), its cgroup, or `host`. */
export function describePlace(out: OutsideEnd): string {
  return out.pod ? `pod ${podLabel(out.pod)}` : out.cgroup || 'host';
}

/** Why an edge crosses the boundary. */
export type LeakVia = 'same open file' | SameObjectVia | 'socket peer' | 'epoll target' | 'shared file table';

/** An edge that crosses the pod boundary: the checkpoint would be inconsistent. */
export interface Leak {
  object: LeakObject;
  via: LeakVia;
  inside: InsideEnd;
  outside: OutsideEnd;
}

/**
 * Something shared across the boundary that is not a leak: at the inode level
 * only, or the stdio its launcher gave a process (launcher-stdio.ts).
 */
export type NoteKind =
  'shared-inode' | 'mapped-outside' | 'mapped-inside' | 'locked-outside' | 'launcher-stdio';

/** A relation across the boundary that is worth knowing and is not a leak (see NoteKind). */
export interface Note {
  kind: NoteKind;
  object: LeakObject;
  inside: InsideEnd;
  outside: OutsideEnd;
  detail: string;
}

/** What to do when leaks are found during a capture. */
export type LeakPolicy = 'fail' | 'warn' | 'ignore';

/** Whether a string (a CLI flag) is a LeakPolicy. */
export function isLeakPolicy(value: string): value is LeakPolicy {
  return value === 'fail' || value === 'warn' || value === 'ignore';
}

/** findLeaks()' answer: leaks, notes, the scan's size, and what could not be checked. */
export interface LeakReport {
  leaks: Leak[];
  notes: Note[];
  /** The host scan's size and duration. */
  scanned: { processes: number; fds: number; ms: number; candidates: number; threads: number };
  /** What could not be checked (unreadable processes, namespaces, comparisons): the report may miss leaks there. */
  warnings: string[];
}

/** Thrown by a capture under policy 'fail' when leaks are found. */
export class LeakError extends Error {
  override readonly name = 'LeakError';
  /**
   * `problems`: the fds the same capture found unrestorable, so that a refusal names
   * every reason in one pass, not the leaks first and the fds on the next attempt.
   */
  constructor(
    readonly report: LeakReport,
    readonly problems: readonly FdProblem[] = [],
  ) {
    super(
      `${report.leaks.length} leak(s) across the pod boundary; first: ${report.leaks[0] ? describeLeak(report.leaks[0]) : ''}`,
    );
  }
}

/** One line for people: `pipe:[1234] (other end of pipe): pid 10 fd 3 (sh) <-> pid 20 fd 4 (cat, /user.slice)`. */
export function describeLeak(l: Leak | Note): string {
  const out = l.outside;
  const where = describePlace(out);
  const ofd = out.fd === undefined ? '' : ` fd ${out.fd}`;
  const how = 'via' in l ? l.via : l.kind;
  const ifd = l.inside.fd < 0 ? '' : ` fd ${l.inside.fd}`;
  return `${l.object.id} (${l.object.type}, ${how}): inside pid ${l.inside.pid}${ifd} (${l.inside.comm}) <-> outside pid ${out.pid}${ofd} (${out.comm}, ${where})`;
}
