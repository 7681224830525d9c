/**
 * What `fdckpt inspect` shows of a checkpoint: a JSON form for scripts and
 * a table per process for people. Both are pure functions of the model.
 */
import {
  O,
  type Checkpoint,
  type FileData,
  type FileRecord,
  type FileTableRecord,
  type ProcessRecord,
} from '../model.js';
import { flagWords } from './flags.js';
import { FORMAT_VERSION } from './format.js';
import { isoTime, printable, quoted, someOf } from './text.js';

/** One fd of a process in the JSON form. */
export interface InspectFd {
  fd: number;
  /** objref of the open file, a key into `files`. */
  file: number;
  cloexec: boolean;
}

export interface InspectProcess {
  pid: number;
  comm: string;
  argv: string[];
  fds: InspectFd[];
  tgid: number;
  cwd: string;
  exe?: string;
  /** objref of the file table (equal for tasks that share one). */
  table: number;
}

/** Type data with bigints as decimal strings and Buffers as base64, so JSON.stringify never throws. */
export type JsonSafe<T> = T extends bigint
  ? string
  : T extends Buffer
    ? string
    : T extends (infer E)[]
      ? JsonSafe<E>[]
      : T extends object
        ? { [K in keyof T]: JsonSafe<T[K]> }
        : T;

export interface InspectFile {
  objref: number;
  type: string;
  /** Open flags, without O_CLOEXEC (a per-fd bit). */
  flags: number;
  pos: number;
  path: string;
  /** `flags` in words: `O_RDWR|O_APPEND`. */
  flagNames: string;
  mntId: number;
  dev: number;
  ino: number;
  mode: number;
  /** Why the file is recorded but not restored, or null. */
  ignored: 'type' | 'fd' | null;
  data: JsonSafe<FileData>;
}

export interface InspectJson {
  /** The image format version. */
  version: number;
  header: Checkpoint['header'];
  processes: InspectProcess[];
  files: InspectFile[];
}

function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonSafe(x)]));
  }
  return v;
}

/**
 * The checkpoint as plain JSON data: processes with their fds, and the open files they
 * share. `version` is the image's own format version (an older image read by this build
 * keeps its number).
 */
export function toInspectJson(cp: Checkpoint, version = FORMAT_VERSION): InspectJson {
  const tables = new Map(cp.tables.map((t) => [t.objref, t]));
  return {
    version,
    header: { ...cp.header },
    processes: cp.processes.map((p) => ({
      pid: p.pid,
      comm: p.comm,
      argv: [...p.argv],
      fds: (tables.get(p.table)?.fds ?? []).map((d) => ({ fd: d.fd, file: d.file, cloexec: d.cloexec })),
      tgid: p.tgid,
      cwd: p.cwd,
      ...(p.exe === undefined ? {} : { exe: p.exe }),
      table: p.table,
    })),
    files: cp.files.map((f) => {
      const flags = f.flags & ~O.CLOEXEC;
      return {
        objref: f.objref,
        type: f.type,
        flags,
        pos: f.pos,
        path: f.path,
        flagNames: flagWords(flags, true),
        mntId: f.mntId,
        dev: f.dev,
        ino: f.ino,
        mode: f.mode,
        ignored: f.ignored?.reason ?? null,
        data: jsonSafe(f.data) as JsonSafe<FileData>,
      };
    }),
  };
}

/** Cells wider than this are not padded to: one 4 KiB path must not widen every row. */
const MAX_ALIGN = 48;

function table(rows: string[][], indent: string): string[] {
  const widths = rows[0]!.map(() => 0);
  for (const r of rows)
    r.forEach((cell, i) => (widths[i] = Math.max(widths[i]!, Math.min(cell.length, MAX_ALIGN))));
  return rows.map((r) => (indent + r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')).trimEnd());
}

type Holder = { proc: ProcessRecord; fd: number };

/** Who holds each open file: (process, fd) pairs, counting a table shared by tasks once. */
function holders(cp: Checkpoint, tables: Map<number, FileTableRecord>): Map<number, Holder[]> {
  const byFile = new Map<number, Holder[]>();
  const seenTables = new Set<number>();
  for (const proc of cp.processes) {
    if (seenTables.has(proc.table)) continue;
    seenTables.add(proc.table);
    for (const d of tables.get(proc.table)?.fds ?? []) {
      let list = byFile.get(d.file);
      if (!list) byFile.set(d.file, (list = []));
      list.push({ proc, fd: d.fd });
    }
  }
  return byFile;
}

function describeHeader(cp: Checkpoint, version: number): string {
  const h = cp.header;
  return `image v${version}  node ${printable(h.node)}  source ${printable(h.source)}  ${isoTime(h.time)}  kernel ${printable(h.kernel)}  ${printable(h.tool)}`;
}

/**
 * A human-readable table per process: fd, type, flags in words, pos, path,
 * the other fds (here or in other processes) sharing the same open file (the
 * first LIST_CAP, then "… and N more"), close-on-exec, and whether the file
 * is ignored (recorded, not restored). Linear in the image: every lookup is
 * by map, every list is capped. The first line names the image's own format
 * `version` (an older image read by this build keeps its number), as the JSON does.
 */
export function renderInspectTable(cp: Checkpoint, version = FORMAT_VERSION): string {
  const files = new Map<number, FileRecord>(cp.files.map((f) => [f.objref, f]));
  const tables = new Map(cp.tables.map((t) => [t.objref, t]));
  const byFile = holders(cp, tables);
  // The tasks of each file table, in image order: the first one shows the fds.
  const tasks = new Map<number, ProcessRecord[]>();
  for (const p of cp.processes) {
    let list = tasks.get(p.table);
    if (!list) tasks.set(p.table, (list = []));
    list.push(p);
  }
  const out = [describeHeader(cp, version)];
  for (const proc of cp.processes) {
    const mates = tasks.get(proc.table)!;
    const shared =
      mates.length > 1
        ? `, shared with pid ${someOf(
            mates,
            mates.length - 1,
            (p) => String(p.pid),
            (p) => p !== proc,
          )}`
        : '';
    out.push(
      '',
      `process ${proc.pid} (${printable(proc.comm)}) tgid ${proc.tgid}  table ${proc.table}${shared}`,
    );
    out.push(
      `  argv: ${proc.argv.map(quoted).join(' ')}`.trimEnd(),
      `  cwd: ${printable(proc.cwd)}`,
      ...(proc.exe === undefined ? [] : [`  exe: ${printable(proc.exe)}`]),
    );
    const first = mates[0]!;
    if (first !== proc) {
      out.push(`  fds: the file table of pid ${first.pid}, above`);
      continue;
    }
    const fds = tables.get(proc.table)?.fds ?? [];
    const rows = [['FD', 'TYPE', 'FLAGS', 'POS', 'PATH', 'SHARED-WITH', 'CLOEXEC', 'IGNORED']];
    for (const d of fds) {
      const f = files.get(d.file);
      const all = byFile.get(d.file) ?? [];
      const others = someOf(
        all,
        all.length - 1,
        (h) => (h.proc.table === proc.table ? `fd ${h.fd}` : `pid ${h.proc.pid} fd ${h.fd}`),
        (h) => !(h.proc.table === proc.table && h.fd === d.fd),
      );
      rows.push([
        String(d.fd),
        f?.type ?? '?',
        f === undefined ? '?' : flagWords(f.flags & ~O.CLOEXEC, true),
        f === undefined ? '?' : String(f.pos),
        f === undefined ? `(objref ${d.file} missing)` : printable(f.path),
        all.length <= 1 ? '-' : others,
        d.cloexec ? 'yes' : 'no',
        f?.ignored === undefined ? '' : `ignored (${f.ignored.reason})`,
      ]);
    }
    if (fds.length === 0) out.push('  (no fds)');
    else out.push(...table(rows, '  '));
  }
  const orphans = cp.files.filter((f) => !byFile.has(f.objref));
  if (orphans.length > 0) {
    out.push('', 'open files held by no fd (e.g. only watched by an epoll):');
    for (const f of orphans) out.push(`  objref ${f.objref}  ${f.type}  ${printable(f.path)}`);
  }
  return out.join('\n') + '\n';
}
