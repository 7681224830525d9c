/** diff: equal tables despite renumbering; each kind of difference, by message. */
import { describe, expect, test } from '@jest/globals';
import { diffCheckpoints, diffToJson, renderDiff } from '../../src/agent/image/diff.js';
import { O, type Checkpoint } from '../../src/agent/model.js';
import { richCheckpoint } from '../support/image-fixtures.js';

/** What a restore legitimately changes: pids, objrefs (and their order), pipe/socket inode numbers. */
function restoredLookalike(): Checkpoint {
  const cp = richCheckpoint();
  const ref = (r: number): number => 5000 - r;
  return {
    header: { ...cp.header, node: 'node-b', time: cp.header.time + 1 },
    files: cp.files
      .map((f) => ({
        ...f,
        objref: ref(f.objref),
        ino: f.ino + 1,
        path: f.path.replace(/^(pipe|socket):\[\d+\]$/, '$1:[4242]'),
      }))
      .reverse(),
    tables: cp.tables.map((t) => ({
      objref: ref(t.objref),
      fds: t.fds.map((d) => ({ ...d, file: ref(d.file) })),
    })),
    processes: cp.processes.map((p) => ({
      ...p,
      pid: p.pid + 10000,
      tgid: p.tgid + 10000,
      table: ref(p.table),
    })),
  };
}

function messages(a: Checkpoint, b: Checkpoint): string[] {
  return diffCheckpoints(a, b).map((d) => d.message);
}

function fileOf(cp: Checkpoint, proc: number, fd: number): Checkpoint['files'][number] {
  const table = cp.tables.find((t) => t.objref === cp.processes[proc]!.table)!;
  const objref = table.fds.find((d) => d.fd === fd)!.file;
  return cp.files.find((f) => f.objref === objref)!;
}

describe('diffCheckpoints', () => {
  test('a checkpoint equals itself', () => {
    expect(diffCheckpoints(richCheckpoint(), richCheckpoint())).toEqual([]);
  });

  test('pids, objref numbering and pipe/socket inode numbers are ignored', () => {
    expect(diffCheckpoints(richCheckpoint(), restoredLookalike())).toEqual([]);
  });

  test('pos', () => {
    const b = restoredLookalike();
    fileOf(b, 0, 9).pos = 20;
    expect(diffCheckpoints(richCheckpoint(), b)).toEqual([
      { process: 0, fd: 9, field: 'pos', a: 10, b: 20, message: 'process 0 fd 9: pos 10 != 20' },
    ]);
  });

  test("flags, in words; a change to a shared file shows on every fd holding it, a thread's table once", () => {
    const b = restoredLookalike();
    fileOf(b, 0, 1).flags = O.WRONLY;
    expect(messages(richCheckpoint(), b)).toEqual([
      'process 0 fd 1: flags O_WRONLY|O_APPEND != O_WRONLY',
      'process 0 fd 2: flags O_WRONLY|O_APPEND != O_WRONLY',
      'process 2 fd 1: flags O_WRONLY|O_APPEND != O_WRONLY',
    ]);
  });

  test('type, path and cloexec', () => {
    const b = restoredLookalike();
    const f = fileOf(b, 2, 5);
    f.type = 'pipe';
    f.data = { type: 'pipe', pipeIno: 1, end: 'read', bufferedBytes: 0 };
    fileOf(b, 0, 3).path = '/run/other.fifo';
    b.tables[0]!.fds.find((d) => d.fd === 13)!.cloexec = true;
    expect(messages(richCheckpoint(), b)).toEqual([
      'process 0 fd 3: path "/run/ctl.fifo" != "/run/other.fifo"',
      'process 0 fd 13: cloexec false != true',
      'process 2 fd 5: type socket != pipe',
    ]);
  });

  test('an fd missing on either side', () => {
    const b = restoredLookalike();
    const t = b.tables[1]!;
    t.fds = t.fds.filter((d) => d.fd !== 5);
    t.fds.push({ fd: 7, file: t.fds[0]!.file, cloexec: false });
    expect(diffCheckpoints(richCheckpoint(), b)).toEqual([
      {
        process: 2,
        fd: 5,
        field: 'presence',
        a: true,
        b: false,
        message: 'process 2 fd 5: only in a (socket socket:[890])',
      },
      {
        process: 2,
        fd: 7,
        field: 'presence',
        a: false,
        b: true,
        message: 'process 2 fd 7: only in b (tty /dev/pts/3)',
      },
    ]);
  });

  test('sharing: two fds of one open file restored as two open files', () => {
    const b = restoredLookalike();
    const log = fileOf(b, 0, 2);
    const copy = { ...log, objref: 9999 };
    b.files.push(copy);
    b.tables[0]!.fds.find((d) => d.fd === 2)!.file = 9999;
    expect(messages(richCheckpoint(), b)).toEqual([
      'process 0 fd 1: shares its open file with process 0 fd 2, process 2 fd 1 in a, with process 2 fd 1 in b',
      'process 0 fd 2: shares its open file with process 0 fd 1, process 2 fd 1 in a, with no other fd in b',
      'process 2 fd 1: shares its open file with process 0 fd 1, process 0 fd 2 in a, with process 0 fd 1 in b',
    ]);
  });

  test('sharing: two separate open files restored as one', () => {
    // a: fds 3 and 14 open the fifo twice (two open files, two offsets); b: fd 14 is a dup of fd 3.
    const a = richCheckpoint();
    a.files.push({ ...a.files[2]!, objref: 20 });
    a.tables[0]!.fds.push({ fd: 14, file: 20, cloexec: true });
    const b = restoredLookalike();
    const fifo = b.tables[0]!.fds.find((d) => d.fd === 3)!.file;
    b.tables[0]!.fds.push({ fd: 14, file: fifo, cloexec: true });
    expect(messages(a, b)).toEqual([
      'process 0 fd 3: shares its open file with no other fd in a, with process 0 fd 14 in b',
      'process 0 fd 14: shares its open file with no other fd in a, with process 0 fd 3 in b',
    ]);
  });

  test('process count, and processes only on one side', () => {
    const b = restoredLookalike();
    b.processes.pop();
    expect(messages(richCheckpoint(), b)).toEqual([
      'process count 4 != 3',
      'process 3: only in a (pid 901, "idle")',
    ]);
  });

  test('file-table sharing between tasks', () => {
    const b = restoredLookalike();
    b.tables.push({ objref: 7777, fds: b.tables[0]!.fds.map((d) => ({ ...d })) });
    b.processes[1]!.table = 7777;
    expect(messages(richCheckpoint(), b)).toEqual([
      'process 0: shares its file table with process 1 in a, with no other process in b',
      'process 1: shares its file table with process 0 in a, with no other process in b',
    ]);
  });
});

describe('rendering', () => {
  test('text and JSON', () => {
    const b = restoredLookalike();
    fileOf(b, 0, 9).pos = 20;
    const diffs = diffCheckpoints(richCheckpoint(), b);
    expect(renderDiff(diffs)).toBe('1 difference:\n  process 0 fd 9: pos 10 != 20\n');
    expect(renderDiff([])).toBe('no differences\n');
    expect(JSON.parse(JSON.stringify(diffToJson(diffs)))).toEqual({
      equal: false,
      differences: [
        { process: 0, fd: 9, field: 'pos', a: 10, b: 20, message: 'process 0 fd 9: pos 10 != 20' },
      ],
    });
    expect(diffToJson([])).toEqual({ equal: true, differences: [] });
  });
});
