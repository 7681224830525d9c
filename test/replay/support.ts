/** Helpers for replay tests: hand-built checkpoints and reading a live table back. */
import { afterEach } from '@jest/globals';
import fs from 'node:fs';
import type { Checkpoint, FileData, FileRecord } from '../../src/agent/model.js';
import { capture } from '../../src/agent/capture/index.js';
import { restore, type Restored } from '../../src/agent/replay/index.js';

/** Builds a one-process checkpoint from fd → file entries (files shared by reference). */
export function checkpointOf(entries: { fd: number; file: FileRecord; cloexec?: boolean }[]): Checkpoint {
  const files = [...new Set(entries.map((e) => e.file))];
  return {
    header: { node: 'test', source: 'test', time: 0, kernel: 'test', tool: 'test' },
    processes: [{ pid: 1, tgid: 1, comm: 'test', argv: [], cwd: '/', table: 1000 }],
    tables: [
      {
        objref: 1000,
        fds: entries
          .map((e) => ({ fd: e.fd, file: e.file.objref, cloexec: e.cloexec ?? false }))
          .sort((a, b) => a.fd - b.fd),
      },
    ],
    files,
  };
}

let nextObjref = 1;

/** A FileRecord with the given fields and data. */
export function fileOf(
  type: FileRecord['type'],
  path: string,
  flags: number,
  pos: number,
  data: FileData,
): FileRecord {
  return { objref: nextObjref++, type, flags, pos, path, mntId: 0, dev: 0, ino: 0, mode: 0, data };
}

/** One fd as /proc/PID/fdinfo and the fd link show it. */
export interface LiveFd {
  fd: number;
  pos: number;
  flags: number;
  link: string;
  lines: Record<string, string>;
  tfds: string[];
}

/** Reads every fd of `pid`. */
export function liveTable(pid: number): Map<number, LiveFd> {
  const out = new Map<number, LiveFd>();
  for (const fd of fs
    .readdirSync(`/proc/${pid}/fd`)
    .map(Number)
    .sort((a, b) => a - b)) {
    const text = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    const lines: Record<string, string> = {};
    const tfds: string[] = [];
    for (const line of text.split('\n')) {
      const m = /^([\w-]+):\s*(.*)$/.exec(line);
      if (!m) continue;
      if (m[1] === 'tfd') tfds.push(m[2]!.replace(/\s+/g, ' '));
      else lines[m[1]!] = m[2]!;
    }
    out.set(fd, {
      fd,
      pos: Number(lines['pos']),
      flags: parseInt(lines['flags'] ?? '0', 8),
      link: fs.readlinkSync(`/proc/${pid}/fd/${fd}`),
      lines,
      tfds,
    });
  }
  return out;
}

/**
 * Waits until restored `sleep` has finished starting up (the dynamic loader opens
 * and closes files at lowest free fds) and sits in its nanosleep, so that a
 * capture of it sees only the restored table.
 */
export async function waitAsleep(pid: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (fs.readFileSync(`/proc/${pid}/wchan`, 'utf8').includes('nanosleep')) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`pid ${pid} did not reach its sleep`);
}

/**
 * An array for the tests' restored targets: whatever is pushed is killed and reaped
 * after each test (registered as an afterEach of the calling file).
 */
export function trackRestored(): Restored[] {
  const started: Restored[] = [];
  afterEach(async () => {
    for (const r of started.splice(0)) {
      try {
        process.kill(r.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await r.exit;
    }
  });
  return started;
}

/** A real interpreter binary: a wrapper script (pyenv shim) would exec again and drop cloexec fds. */
export const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** The open file at fd `fd` of process `pid` in `cp`. */
export function fileAtFd(cp: Checkpoint, pid: number, fd: number): FileRecord {
  const proc = cp.processes.find((p) => p.pid === pid)!;
  const rec = cp.tables.find((t) => t.objref === proc.table)!.fds.find((e) => e.fd === fd)!;
  return cp.files.find((f) => f.objref === rec.file)!;
}

/**
 * Restores `cp` into python3 running `lines` with a report path (in `dir`) as
 * argv[1], expects it to exit 0, and returns the JSON it wrote there. The
 * target is tracked in `started` until it has exited.
 */
export async function runRestoredPython(
  cp: Checkpoint,
  lines: string[],
  dir: string,
  started: Restored[],
): Promise<unknown> {
  const report = `${dir}/report-${Date.now()}.json`;
  const r = await restore(cp, [PYTHON, '-c', lines.join('\n'), report], { stdio: 'ignore' });
  started.push(r);
  const status = await r.exit;
  started.splice(started.indexOf(r), 1);
  const text = fs.existsSync(report) ? fs.readFileSync(report, 'utf8') : '(no report)';
  if (status !== 0) throw new Error(`the restored program exited with ${status}: ${text}`);
  return JSON.parse(text);
}

/** Restores `cp` into `sleep 60` (tracked in `started`), waits until it sleeps, and captures it again. */
export async function restoreAndRecapture(
  cp: Checkpoint,
  started: Restored[],
  batch: boolean,
): Promise<{ pid: number; after: ReturnType<typeof capture> }> {
  const r = await restore(cp, ['sleep', '60'], { stdio: 'ignore', batch });
  started.push(r);
  await waitAsleep(r.pid);
  return { pid: r.pid, after: capture([r.pid]) };
}
