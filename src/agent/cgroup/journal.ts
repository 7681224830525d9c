/**
 * The freeze journal: one small file per cgroup this node froze, written and
 * fsynced before the freeze is requested, removed once it is thawed (or handed
 * over frozen, `leave-frozen`). A process killed mid-capture (SIGKILL, OOM, a
 * node agent's pod deleted) cannot run its thaw; the next agent or CLI run on
 * the node can, from here, whatever happened to the Checkpoint. An entry whose
 * writer is still alive (same pid and start time) belongs to a capture in
 * progress and is left alone.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve, sep } from 'node:path';
import { readProcStat } from '../linux/procstat.js';
import { cgroupMounts } from './mounts.js';

/** One journaled freeze. */
export interface JournalEntry {
  /** The cgroup's path, for messages. */
  cgroup: string;
  /** The file whose write thaws it (cgroup.freeze or freezer.state)… */
  file: string;
  /** …and what to write there ('0' or 'THAWED'). */
  thawValue: string;
  /** Who froze it: pid and its start time in /proc/PID/stat (against pid reuse). */
  pid: number;
  startTime: string;
  /** When, for operators reading the directory (ISO 8601). */
  since: string;
}

/** The journal directory of an agent's data directory. */
export function freezeJournalOf(dataDir: string): string {
  return join(dataDir, 'freezes');
}

/** Default journal directory: the agent's default data directory's, so that the agent thaws a killed CLI's freezes. */
export function defaultJournalDir(): string {
  return freezeJournalOf(process.env['FDCKPT_DATA_DIR'] ?? '/var/lib/fdckpt');
}

/** Field 22 of /proc/PID/stat (start time in clock ticks), or undefined when the process is gone. */
export function processStartTime(pid: number): string | undefined {
  return readProcStat(pid)?.startTime;
}

/** The journal file of a cgroup in `dir` (a hash: cgroup paths have slashes and any bytes). */
export function journalFile(dir: string, cgroupPath: string): string {
  return join(dir, `${createHash('sha256').update(cgroupPath).digest('hex').slice(0, 32)}.json`);
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes and fsyncs the entry (and its directory) before the caller freezes. */
export function recordFreeze(dir: string, entry: Omit<JournalEntry, 'pid' | 'startTime' | 'since'>): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const full: JournalEntry = {
    ...entry,
    pid: process.pid,
    startTime: processStartTime(process.pid) ?? '',
    since: new Date().toISOString(),
  };
  const file = journalFile(dir, entry.cgroup);
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(full) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  // rename: a reader never sees half an entry.
  renameSync(tmp, file);
  fsyncDir(dir);
  return file;
}

/** The entries in `dir` written by process `pid` (its freezes in progress), for the agent's metrics. */
export function journaledBy(dir: string, pid: number): JournalEntry[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: JournalEntry[] = [];
  for (const name of names) {
    try {
      const entry = JSON.parse(readFileSync(join(dir, name), 'utf8')) as JournalEntry;
      if (entry.pid === pid) out.push(entry);
    } catch {
      // Removed between the listing and the read: that freeze is over.
    }
  }
  return out;
}

/** Removes an entry once its cgroup is thawed or handed over (missing is fine). */
export function forgetFreeze(file: string): void {
  rmSync(file, { force: true });
}

/**
 * A journal entry may only thaw a freezer file of a cgroup hierarchy: the
 * directory is the agent's own (0700), but a thaw that writes elsewhere would
 * be a write-what-where for whoever could plant a file there.
 */
function freezerFileOk(file: string): boolean {
  const m = cgroupMounts();
  const full = resolve(file);
  if (m.v2 && full.startsWith(m.v2 + sep) && full.endsWith(`${sep}cgroup.freeze`)) return true;
  return !!m.v1Freezer && full.startsWith(m.v1Freezer + sep) && full.endsWith(`${sep}freezer.state`);
}

/** What thawOrphans did with one entry. */
export interface OrphanOutcome {
  cgroup: string;
  outcome: 'thawed' | 'gone' | 'in-progress' | 'refused';
  detail?: string;
}

/**
 * Thaws every journaled cgroup whose freezer is dead, and forgets the entry;
 * leaves the entries of live captures. Returns what it did, for the log.
 */
export function thawOrphans(dir: string): OrphanOutcome[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: OrphanOutcome[] = [];
  for (const name of names) {
    const path = join(dir, name);
    let entry: JournalEntry;
    try {
      entry = JSON.parse(readFileSync(path, 'utf8')) as JournalEntry;
    } catch (err) {
      // A torn write cannot happen (write-then-rename); anything else is not ours.
      out.push({ cgroup: name, outcome: 'refused', detail: `unreadable entry: ${(err as Error).message}` });
      continue;
    }
    if (processStartTime(entry.pid) === entry.startTime && entry.startTime !== '') {
      out.push({ cgroup: entry.cgroup, outcome: 'in-progress', detail: `pid ${entry.pid}` });
      continue;
    }
    if (!freezerFileOk(entry.file)) {
      out.push({ cgroup: entry.cgroup, outcome: 'refused', detail: `${entry.file} is not a freezer file` });
      continue;
    }
    try {
      writeFileSync(entry.file, entry.thawValue);
      out.push({ cgroup: entry.cgroup, outcome: 'thawed' });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') {
        out.push({ cgroup: entry.cgroup, outcome: 'refused', detail: `write ${entry.file}: ${code}` });
        continue;
      }
      // The pod is gone with its cgroup: nothing left frozen.
      out.push({ cgroup: entry.cgroup, outcome: 'gone' });
    }
    forgetFreeze(path);
  }
  return out;
}
