/**
 * Running CRIU and reading what it says about itself: wall time of one command,
 * its stats-dump / stats-restore images (decoded by crit), and phase times
 * taken from the timestamps of a -v4 log.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { childrenCpu } from '../../src/agent/linux/rusage.js';

/** One CRIU command's wall time, from spawn to exit, and the CPU time criu itself used. */
export interface CriuResult {
  ms: number;
  /** User + system CPU of criu and the children it waited for (getrusage RUSAGE_CHILDREN). */
  cpuMs: number;
  status: number | null;
  stderr: string;
}

/** Runs `criu args...` synchronously and times it. */
export function runCriu(criu: string, args: string[]): CriuResult {
  const c0 = childrenCpu();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(criu, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const c1 = childrenCpu();
  const cpuMs = c1.userMs + c1.sysMs - c0.userMs - c0.sysMs;
  return { ms, cpuMs, status: r.status, stderr: r.stderr ?? '' };
}

/**
 * CPU time a live task has used, ms (/proc/PID/schedstat, ns): for the dumpee,
 * the work of CRIU's parasite inside it; for a restored task, its own restore.
 */
export function taskCpuMs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}

/** Throws with the tail of CRIU's log when a command failed. */
export function mustSucceed(what: string, r: CriuResult, log: string): void {
  if (r.status === 0) return;
  const errors = existsSync(log)
    ? readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => /Error|Warn/.test(l))
        .slice(-15)
        .join('\n')
    : '(no log)';
  throw new Error(`${what}: criu exited ${r.status}\n${r.stderr}\n${errors}`);
}

/** CRIU's stats-dump entry (times in µs). */
export interface DumpStats {
  freezing_time: number;
  frozen_time: number;
  memdump_time: number;
  memwrite_time: number;
  pages_written: number;
}

/** CRIU's stats-restore entry (times in µs). */
export interface RestoreStats {
  forking_time: number;
  restore_time: number;
  pages_restored: number;
}

/** Decodes DIR/stats-dump or DIR/stats-restore with crit; null when crit is missing or fails. */
export function readStats(dir: string, kind: 'dump'): DumpStats | null;
export function readStats(dir: string, kind: 'restore'): RestoreStats | null;
export function readStats(dir: string, kind: 'dump' | 'restore'): DumpStats | RestoreStats | null {
  const r = spawnSync('crit', ['show', join(dir, `stats-${kind}`)], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const img = JSON.parse(r.stdout) as { entries: Record<string, Record<string, number>>[] };
  const entry = img.entries[0]?.[kind];
  if (!entry) return null;
  // proto3-style output leaves zero fields out.
  const get = (k: string): number => entry[k] ?? 0;
  return kind === 'dump'
    ? {
        freezing_time: get('freezing_time'),
        frozen_time: get('frozen_time'),
        memdump_time: get('memdump_time'),
        memwrite_time: get('memwrite_time'),
        pages_written: get('pages_written'),
      }
    : {
        forking_time: get('forking_time'),
        restore_time: get('restore_time'),
        pages_restored: get('pages_restored'),
      };
}

/** A -v4 log as (seconds since CRIU started, message) pairs. */
function logLines(path: string): [number, string][] {
  const out: [number, string][] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^\((\d+\.\d+)\) (.*)$/.exec(line);
    if (m) out.push([Number(m[1]) * 1000, m[2]!]);
  }
  return out;
}

function first(lines: [number, string][], re: RegExp): number {
  const hit = lines.find(([, msg]) => re.test(msg));
  return hit ? hit[0] : NaN;
}

function last(lines: [number, string][], re: RegExp): number {
  for (let i = lines.length - 1; i >= 0; i--) if (re.test(lines[i]![1])) return lines[i]![0];
  return NaN;
}

/** Phases of `criu dump -v4`, ms. Markers are CRIU 4.2's log messages. */
export interface DumpPhases {
  /** Start to "Dumping processes": kerndat, netns links. */
  setup: number;
  /** Seizing the tree, mounts, and collecting every socket of the netns (sock_diag). */
  seizeAndSockets: number;
  /** The parasite lists the fds ("Collecting fds" .. "Found N file descriptors"). */
  fdList: number;
  /** "Dumping opened files" .. "Dumping pages": per-fd work (fdinfo, paths, images). */
  files: number;
  /** "Dumping pages" .. unfreeze: memory. */
  memory: number;
  total: number;
}

/** Reads phase times out of a dump -v4 log. */
export function dumpPhases(log: string): DumpPhases {
  const l = logLines(log);
  const procs = first(l, /^Dumping processes \(pid/);
  const task = first(l, /^Dumping task \(pid/);
  const pages = first(l, /^Dumping pages \(type/);
  return {
    setup: procs,
    seizeAndSockets: task - procs,
    fdList: first(l, /^Found \d+ file descriptors/) - first(l, /^Collecting fds \(pid/),
    files: pages - first(l, /^Dumping opened files \(pid/),
    memory: first(l, /^Unfreezing tasks/) - pages,
    total: last(l, /^Dumping finished successfully/),
  };
}

/** Phases of `criu restore -v4`, ms. */
export interface RestorePhases {
  /** "Reading image tree" .. "Running pre-restore scripts": reading and collecting images (files.img). */
  images: number;
  /** First to last "Collect fdinfo": the task's fd table from its fdinfo image. */
  fdinfo: number;
  /** First to last "Create fd for": opening every file and putting it at its fd number. */
  openFds: number;
  total: number;
}

/** Reads phase times out of a restore -v4 log. */
export function restorePhases(log: string): RestorePhases {
  const l = logLines(log);
  return {
    images: first(l, /^Running pre-restore scripts/) - first(l, /^Reading image tree/),
    fdinfo: last(l, /Collect fdinfo pid=/) - first(l, /Collect fdinfo pid=/),
    openFds: last(l, /Create fd for \d+/) - first(l, /Create fd for \d+/),
    total: last(l, /^Restore finished successfully/),
  };
}
