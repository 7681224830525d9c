/**
 * Compares the fd tables of two checkpoints — typically one taken before a
 * restore and one of the restored processes — ignoring what a restore
 * legitimately changes: pids, objref numbering, and the kernel-assigned
 * inode numbers in `pipe:[N]` / `socket:[N]` names. Processes are matched
 * in order. What must be equal: which fds exist, and for each its type,
 * flags, offset, close-on-exec bit and path; and the sharing, i.e. which
 * fds (in any matched process) hold the same open file, and which
 * processes share one file table.
 */
import { O, type Checkpoint, type FdRecord, type FileRecord, type ProcessRecord } from '../model.js';
import { flagWords } from './flags.js';

export type DiffField =
  | 'processes'
  | 'process'
  | 'presence'
  | 'type'
  | 'flags'
  | 'pos'
  | 'cloexec'
  | 'path'
  | 'sharing'
  | 'table-sharing';

export type DiffValue = string | number | boolean | null;

/** One difference; `a` and `b` are the two sides' values, JSON-safe. */
export interface Difference {
  /** Index of the process in both checkpoints' `processes`, or null for checkpoint-wide differences. */
  process: number | null;
  fd: number | null;
  field: DiffField;
  a: DiffValue;
  b: DiffValue;
  message: string;
}

interface Side {
  cp: Checkpoint;
  files: Map<number, FileRecord>;
  /** Per matched process index: fd number → fd record. */
  fds: Map<number, FdRecord>[];
}

function side(cp: Checkpoint, n: number): Side {
  const files = new Map(cp.files.map((f) => [f.objref, f]));
  const tables = new Map(cp.tables.map((t) => [t.objref, t]));
  const fds = cp.processes
    .slice(0, n)
    .map((p) => new Map((tables.get(p.table)?.fds ?? []).map((d) => [d.fd, d] as [number, FdRecord])));
  return { cp, files, fds };
}

/** A restore gets new inode numbers for pipes and sockets: compare their names without them. */
function comparablePath(f: FileRecord): string {
  return f.type === 'pipe' || f.type === 'socket' ? f.path.replace(/:\[\d+\]$/, ':[*]') : f.path;
}

const key = (proc: number, fd: number): string => `${proc}:${fd}`;

function describeKey(k: string): string {
  const [proc, fd] = k.split(':');
  return `process ${proc} fd ${fd}`;
}

/** For each (process, fd) present on both sides: the other such keys holding the same open file. */
function sharers(s: Side, common: Set<string>): Map<string, string[]> {
  const byFile = new Map<number, string[]>();
  s.fds.forEach((fds, proc) => {
    for (const d of fds.values()) {
      const k = key(proc, d.fd);
      if (!common.has(k)) continue;
      byFile.set(d.file, [...(byFile.get(d.file) ?? []), k]);
    }
  });
  const out = new Map<string, string[]>();
  for (const group of byFile.values()) for (const k of group) out.set(k, group.filter((x) => x !== k).sort());
  return out;
}

/** Differences between the fds of one matched pair of processes. */
function diffFds(i: number, a: Side, b: Side, out: Difference[]): void {
  const fa = a.fds[i]!;
  const fb = b.fds[i]!;
  const numbers = [...new Set([...fa.keys(), ...fb.keys()])].sort((x, y) => x - y);
  for (const fd of numbers) {
    const da = fa.get(fd);
    const db = fb.get(fd);
    const at = `process ${i} fd ${fd}`;
    if (da === undefined || db === undefined) {
      const present = (da ?? db)!;
      const file = (da === undefined ? b : a).files.get(present.file);
      const what = file === undefined ? `objref ${present.file}` : `${file.type} ${file.path}`;
      const only = da === undefined ? 'b' : 'a';
      out.push({
        process: i,
        fd,
        field: 'presence',
        a: da !== undefined,
        b: db !== undefined,
        message: `${at}: only in ${only} (${what})`,
      });
      continue;
    }
    const xa = a.files.get(da.file);
    const xb = b.files.get(db.file);
    if (xa === undefined || xb === undefined) {
      const missing = xa === undefined ? `a (objref ${da.file})` : `b (objref ${db.file})`;
      out.push({
        process: i,
        fd,
        field: 'presence',
        a: true,
        b: true,
        message: `${at}: no file record in ${missing}`,
      });
      continue;
    }
    const push = (field: DiffField, va: DiffValue, vb: DiffValue, shown?: [string, string]): void => {
      if (va === vb) return;
      const [sa, sb] = shown ?? [String(va), String(vb)];
      out.push({ process: i, fd, field, a: va, b: vb, message: `${at}: ${field} ${sa} != ${sb}` });
    };
    push('type', xa.type, xb.type);
    const flagsA = xa.flags & ~O.CLOEXEC;
    const flagsB = xb.flags & ~O.CLOEXEC;
    push('flags', flagsA, flagsB, [flagWords(flagsA, true), flagWords(flagsB, true)]);
    push('pos', xa.pos, xb.pos);
    push('cloexec', da.cloexec, db.cloexec);
    push('path', comparablePath(xa), comparablePath(xb), [JSON.stringify(xa.path), JSON.stringify(xb.path)]);
  }
}

function diffSharing(a: Side, b: Side, repeats: Set<number>, out: Difference[]): void {
  const common = new Set<string>();
  a.fds.forEach((fds, proc) => {
    if (repeats.has(proc)) return;
    for (const fd of fds.keys()) if (b.fds[proc]!.has(fd)) common.add(key(proc, fd));
  });
  const sa = sharers(a, common);
  const sb = sharers(b, common);
  for (const k of common) {
    const ga = sa.get(k) ?? [];
    const gb = sb.get(k) ?? [];
    if (ga.join() === gb.join()) continue;
    const show = (g: string[]): string => (g.length === 0 ? 'no other fd' : g.map(describeKey).join(', '));
    const [proc, fd] = k.split(':').map(Number) as [number, number];
    out.push({
      process: proc,
      fd,
      field: 'sharing',
      a: ga.join(' '),
      b: gb.join(' '),
      message: `${describeKey(k)}: shares its open file with ${show(ga)} in a, with ${show(gb)} in b`,
    });
  }
}

/**
 * Processes whose file table is, on both sides, the table of an earlier
 * process (threads): their fds are that process's fds, compared once.
 */
function sameTableAsEarlier(pa: ProcessRecord[], pb: ProcessRecord[]): Set<number> {
  const out = new Set<number>();
  for (let i = 0; i < pa.length; i++) {
    for (let j = 0; j < i; j++) {
      if (pa[j]!.table === pa[i]!.table && pb[j]!.table === pb[i]!.table) out.add(i);
    }
  }
  return out;
}

/** Which other matched processes share each process's file table (CLONE_FILES). */
function tableMates(procs: ProcessRecord[], i: number): number[] {
  return procs.flatMap((p, j) => (j !== i && p.table === procs[i]!.table ? [j] : []));
}

function diffTableSharing(pa: ProcessRecord[], pb: ProcessRecord[], out: Difference[]): void {
  for (let i = 0; i < pa.length; i++) {
    const ma = tableMates(pa, i).join(', ');
    const mb = tableMates(pb, i).join(', ');
    if (ma === mb) continue;
    const show = (m: string): string => (m === '' ? 'no other process' : `process ${m}`);
    out.push({
      process: i,
      fd: null,
      field: 'table-sharing',
      a: ma,
      b: mb,
      message: `process ${i}: shares its file table with ${show(ma)} in a, with ${show(mb)} in b`,
    });
  }
}

/**
 * The differences between the fd tables of `a` and `b`, in a stable order
 * (per process, per fd, then sharing). Empty when the tables are equivalent.
 */
export function diffCheckpoints(a: Checkpoint, b: Checkpoint): Difference[] {
  const out: Difference[] = [];
  const n = Math.min(a.processes.length, b.processes.length);
  if (a.processes.length !== b.processes.length) {
    const [na, nb] = [a.processes.length, b.processes.length];
    out.push({
      process: null,
      fd: null,
      field: 'processes',
      a: na,
      b: nb,
      message: `process count ${na} != ${nb}`,
    });
    for (const [name, cp] of [
      ['a', a],
      ['b', b],
    ] as const) {
      cp.processes.slice(n).forEach((p, j) => {
        const message = `process ${n + j}: only in ${name} (pid ${p.pid}, ${JSON.stringify(p.comm)})`;
        out.push({ process: n + j, fd: null, field: 'process', a: name === 'a', b: name === 'b', message });
      });
    }
  }
  const sa = side(a, n);
  const sb = side(b, n);
  const repeats = sameTableAsEarlier(a.processes.slice(0, n), b.processes.slice(0, n));
  for (let i = 0; i < n; i++) if (!repeats.has(i)) diffFds(i, sa, sb, out);
  diffSharing(sa, sb, repeats, out);
  diffTableSharing(a.processes.slice(0, n), b.processes.slice(0, n), out);
  return out;
}

/** One line per difference, or a line saying there is none. */
export function renderDiff(diffs: readonly Difference[]): string {
  if (diffs.length === 0) return 'no differences\n';
  const n = diffs.length;
  return `${n} difference${n === 1 ? '' : 's'}:\n` + diffs.map((d) => `  ${d.message}\n`).join('');
}

/** The JSON form of a diff: `{"equal": bool, "differences": [...]}`. */
export function diffToJson(diffs: readonly Difference[]): { equal: boolean; differences: Difference[] } {
  return { equal: diffs.length === 0, differences: diffs.map((d) => ({ ...d })) };
}
