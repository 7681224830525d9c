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
import { codecOf } from './filedata/index.js';
import { flagWords } from './flags.js';
import { printable, quoted, someOf } from './text.js';

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

/** The name a restore must reproduce: the type's codec masks what the kernel renumbers. */
function comparablePath(f: FileRecord): string {
  return codecOf(f.type).comparablePath?.(f.path) ?? f.path;
}

const key = (proc: number, fd: number): string => `${proc}:${fd}`;

function describeKey(k: string): string {
  const [proc, fd] = k.split(':');
  return `process ${proc} fd ${fd}`;
}

/** The groups of common (process, fd) keys holding one open file, in key order, and each key's group. */
function sharers(s: Side, common: readonly string[]): { groups: string[][]; of: Map<string, number> } {
  const byFile = new Map<number, number>();
  const groups: string[][] = [];
  const of = new Map<string, number>();
  const commonSet = new Set(common);
  s.fds.forEach((fds, proc) => {
    for (const d of fds.values()) {
      const k = key(proc, d.fd);
      if (!commonSet.has(k)) continue;
      let g = byFile.get(d.file);
      if (g === undefined) {
        g = groups.length;
        byFile.set(d.file, g);
        groups.push([]);
      }
      groups[g]!.push(k);
      of.set(k, g);
    }
  });
  for (const g of groups) g.sort();
  return { groups, of };
}

/**
 * Which groups of `a` are, as sets, a group of `b` too: a group is when all its
 * members are in one group of `b` of the same size. One pass over the keys.
 */
function sameGroups(a: ReturnType<typeof sharers>, b: ReturnType<typeof sharers>): Set<number> {
  const same = new Set<number>();
  a.groups.forEach((members, g) => {
    const h = b.of.get(members[0]!);
    if (h === undefined || b.groups[h]!.length !== members.length) return;
    if (members.every((k) => b.of.get(k) === h)) same.add(g);
  });
  return same;
}

/** The other members of `k`'s group, the first few and a count (a group can hold every fd of the image). */
function mates(group: readonly string[], k: string): string {
  return group.length <= 1 ? '' : someOf(group, group.length - 1, describeKey, (x) => x !== k);
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
      const what = file === undefined ? `objref ${present.file}` : `${file.type} ${printable(file.path)}`;
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
    push('path', comparablePath(xa), comparablePath(xb), [quoted(xa.path), quoted(xb.path)]);
  }
}

function diffSharing(a: Side, b: Side, repeats: Set<number>, out: Difference[]): void {
  const common: string[] = [];
  a.fds.forEach((fds, proc) => {
    if (repeats.has(proc)) return;
    for (const fd of fds.keys()) if (b.fds[proc]!.has(fd)) common.push(key(proc, fd));
  });
  const sa = sharers(a, common);
  const sb = sharers(b, common);
  const same = sameGroups(sa, sb);
  for (const k of common) {
    if (same.has(sa.of.get(k)!)) continue;
    const ma = mates(sa.groups[sa.of.get(k)!]!, k);
    const mb = mates(sb.groups[sb.of.get(k)!]!, k);
    const show = (m: string): string => (m === '' ? 'no other fd' : m);
    const [proc, fd] = k.split(':').map(Number) as [number, number];
    out.push({
      process: proc,
      fd,
      field: 'sharing',
      a: ma,
      b: mb,
      message: `${describeKey(k)}: shares its open file with ${show(ma)} in a, with ${show(mb)} in b`,
    });
  }
}

/**
 * Processes whose file table is, on both sides, the table of an earlier
 * process (threads): their fds are that process's fds, compared once.
 */
function sameTableAsEarlier(pa: ProcessRecord[], pb: ProcessRecord[]): Set<number> {
  const out = new Set<number>();
  const seen = new Set<string>();
  for (let i = 0; i < pa.length; i++) {
    const k = `${pa[i]!.table}:${pb[i]!.table}`;
    if (seen.has(k)) out.add(i);
    else seen.add(k);
  }
  return out;
}

/** The processes of each file table (indexes in order), and each process's table group. */
function tableGroups(procs: ProcessRecord[]): { groups: number[][]; of: number[] } {
  const byTable = new Map<number, number>();
  const groups: number[][] = [];
  const of = procs.map((p, i) => {
    let g = byTable.get(p.table);
    if (g === undefined) {
      g = groups.length;
      byTable.set(p.table, g);
      groups.push([]);
    }
    groups[g]!.push(i);
    return g;
  });
  return { groups, of };
}

function diffTableSharing(pa: ProcessRecord[], pb: ProcessRecord[], out: Difference[]): void {
  const ga = tableGroups(pa);
  const gb = tableGroups(pb);
  // A group of a is the same as i's group of b when they have the same size and all its
  // members are in that one group of b.
  const same = ga.groups.map((members) => {
    const h = gb.of[members[0]!]!;
    return gb.groups[h]!.length === members.length && members.every((j) => gb.of[j] === h);
  });
  for (let i = 0; i < pa.length; i++) {
    if (same[ga.of[i]!]) continue;
    const list = (g: number[]): string =>
      g.length <= 1 ? '' : someOf(g, g.length - 1, String, (j) => j !== i);
    const ma = list(ga.groups[ga.of[i]!]!);
    const mb = list(gb.groups[gb.of[i]!]!);
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
        const message = `process ${n + j}: only in ${name} (pid ${p.pid}, ${quoted(p.comm)})`;
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
