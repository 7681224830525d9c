/**
 * Today's reader against images older releases wrote: test/fixtures/images holds one
 * per released format version, captured by that release from the same process
 * (its README says which commit, which command, and what the process held). Each is
 * read and checked fd by fd, not only parsed; every readable version must have one.
 */
import { describe, expect, test } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodeCheckpoint,
  diffCheckpoints,
  readImageFile,
  renderInspectTable,
  toInspectJson,
} from '../../src/agent/image/index.js';
import { FORMAT_VERSION, READABLE_VERSIONS } from '../../src/agent/image/format.js';
import { O, type Checkpoint, type FileRecord, type ProcessRecord } from '../../src/agent/model.js';
import { FIXTURES, FIXTURE_DIR as DIR, type Fixture } from '../support/version-fixtures.js';

/** Where holder.py ran: the paths of every fixture. */
const D = '/tmp/fdckpt-image-fixture';
const DATA = `${D}/data.txt`;
const LF = O.LARGEFILE;

/** One fd as the README's table says: the file's type, flags, pos, path and the fd's cloexec bit. */
interface WantFd {
  fd: number;
  type: FileRecord['type'];
  flags: number;
  pos?: number;
  path: string | RegExp;
  cloexec?: boolean;
  ignored?: 'type' | 'fd';
}

/** The main process's table (README: "Main process"); `ownersRestored` is format 3's release. */
function mainFds(ownersRestored: boolean): WantFd[] {
  const byFdOld = ownersRestored ? undefined : ('fd' as const);
  return [
    { fd: 0, type: 'regular', flags: O.RDONLY | LF, path: '/dev/null' },
    { fd: 1, type: 'regular', flags: O.WRONLY | O.APPEND | LF, path: `${D}/log` },
    { fd: 2, type: 'regular', flags: O.WRONLY | O.APPEND | LF, path: `${D}/log` },
    { fd: 3, type: 'regular', flags: O.RDONLY | LF, pos: 17, path: DATA },
    { fd: 4, type: 'regular', flags: O.WRONLY | O.APPEND | LF, path: DATA, cloexec: true },
    { fd: 5, type: 'regular', flags: O.RDWR | O.NONBLOCK | LF, pos: 333, path: DATA },
    { fd: 6, type: 'regular', flags: O.RDWR | O.NONBLOCK | LF, pos: 333, path: DATA, cloexec: true },
    { fd: 7, type: 'regular', flags: O.RDONLY | LF, pos: 17, path: DATA, cloexec: true },
    { fd: 8, type: 'directory', flags: O.RDONLY | LF | O.DIRECTORY, path: D, cloexec: true },
    { fd: 9, type: 'pipe', flags: O.RDONLY, path: /^pipe:\[\d+\]$/ },
    { fd: 10, type: 'pipe', flags: O.WRONLY, path: /^pipe:\[\d+\]$/ },
    { fd: 11, type: 'eventfd', flags: O.RDWR | O.NONBLOCK, path: 'anon_inode:[eventfd]' },
    { fd: 12, type: 'eventfd', flags: O.RDWR, path: 'anon_inode:[eventfd]', cloexec: true },
    { fd: 13, type: 'memfd', flags: O.RDWR | LF, pos: 7, path: '/memfd:fixture (deleted)' },
    { fd: 14, type: 'eventpoll', flags: O.RDWR, path: 'anon_inode:[eventpoll]', cloexec: true },
    { fd: 15, type: 'fifo', flags: O.RDONLY | O.NONBLOCK | LF, path: `${D}/fifo` },
    { fd: 16, type: 'fifo', flags: O.WRONLY | LF, path: `${D}/fifo` },
    { fd: 17, type: 'socket', flags: O.RDWR, path: /^socket:\[\d+\]$/ },
    { fd: 18, type: 'socket', flags: O.RDWR, path: /^socket:\[\d+\]$/, cloexec: true },
    { fd: 19, type: 'signalfd', flags: O.RDWR, path: 'anon_inode:[signalfd]' },
    { fd: 20, type: 'timerfd', flags: O.RDWR, path: 'anon_inode:[timerfd]' },
    { fd: 21, type: 'inotify', flags: O.RDONLY, path: 'anon_inode:inotify', ignored: 'type' },
    { fd: 22, type: 'regular', flags: O.RDWR | LF, path: `${D}/gone.txt (deleted)`, ignored: 'fd' },
    { fd: 23, type: 'socket', flags: O.RDWR, path: /^socket:\[\d+\]$/, ignored: byFdOld },
    { fd: 24, type: 'socket', flags: O.RDWR, path: /^socket:\[\d+\]$/, ignored: byFdOld },
    { fd: 25, type: 'pipe', flags: O.RDONLY, path: /^pipe:\[\d+\]$/, ignored: byFdOld },
    { fd: 26, type: 'pipe', flags: O.WRONLY, path: /^pipe:\[\d+\]$/ },
  ];
}

const CHILD_FDS: WantFd[] = [
  { fd: 0, type: 'regular', flags: O.RDONLY | LF, path: '/dev/null' },
  { fd: 1, type: 'regular', flags: O.WRONLY | O.APPEND | LF, path: `${D}/log` },
  { fd: 2, type: 'regular', flags: O.WRONLY | O.APPEND | LF, path: `${D}/log` },
  { fd: 3, type: 'regular', flags: O.RDONLY | LF, pos: 17, path: DATA },
  { fd: 4, type: 'regular', flags: O.RDONLY | LF, pos: 0, path: DATA },
];

/** The open file of `proc`'s fd `fd`. */
function fileAt(cp: Checkpoint, proc: ProcessRecord, fd: number): FileRecord {
  const table = cp.tables.find((t) => t.objref === proc.table)!;
  const entry = table.fds.find((d) => d.fd === fd);
  if (!entry) throw new Error(`pid ${proc.pid} has no fd ${fd}`);
  return cp.files.find((f) => f.objref === entry.file)!;
}

function expectTable(cp: Checkpoint, proc: ProcessRecord, want: WantFd[]): void {
  const table = cp.tables.find((t) => t.objref === proc.table)!;
  expect(table.fds.map((d) => d.fd)).toEqual(want.map((w) => w.fd));
  for (const w of want) {
    const f = fileAt(cp, proc, w.fd);
    const entry = table.fds.find((d) => d.fd === w.fd)!;
    const got = {
      fd: w.fd,
      type: f.type,
      flags: f.flags,
      pos: f.pos,
      cloexec: entry.cloexec,
      ignored: f.ignored,
    };
    expect(got).toEqual({
      fd: w.fd,
      type: w.type,
      flags: w.flags,
      pos: w.pos ?? 0,
      cloexec: w.cloexec ?? false,
      ignored: w.ignored === undefined ? undefined : { reason: w.ignored },
    });
    if (typeof w.path === 'string') expect(f.path).toBe(w.path);
    else expect(f.path).toMatch(w.path);
  }
}

async function read(fx: Fixture): Promise<{ cp: Checkpoint; version: number }> {
  const { checkpoint, version } = await readImageFile(join(DIR, fx.file));
  return { cp: checkpoint, version };
}

function processOf(cp: Checkpoint, pid: number): ProcessRecord {
  const p = cp.processes.find((x) => x.pid === pid);
  if (!p) throw new Error(`no process ${pid}`);
  return p;
}

describe.each(FIXTURES)('$file, written by the format $version release', (fx) => {
  test('reads as its own version, the same from a file and from memory', async () => {
    const { cp, version } = await read(fx);
    expect(version).toBe(fx.version);
    expect(toInspectJson(cp, version).version).toBe(fx.version);
    expect(renderInspectTable(cp, version)).toMatch(new RegExp(`^image v${fx.version}  `));
    expect(decodeCheckpoint(readFileSync(join(DIR, fx.file)), fx.file)).toEqual(cp);
  });

  test('the header: node, tool, source; a binding only where one was written', async () => {
    const { cp } = await read(fx);
    const pids = fx.main === undefined ? [fx.child] : [fx.main, fx.thread!, fx.child];
    expect(cp.header).toMatchObject({
      node: 'fixture-node',
      tool: 'fdckpt 0.1.0',
      source: `pids ${pids.join(',')}`,
    });
    expect(cp.header.kernel).toMatch(/^\d+\.\d+/);
    expect(cp.header.time).toBeGreaterThan(Date.UTC(2026, 0, 1));
    if (fx.binding) expect(cp.header.binding).toEqual(fx.binding);
    else expect('binding' in cp.header).toBe(false);
  });

  test('the processes: comm, argv, cwd; exe from format 3 on, absent before', async () => {
    const { cp } = await read(fx);
    const pids = fx.main === undefined ? [fx.child] : [fx.main, fx.thread!, fx.child];
    expect(cp.processes.map((p) => p.pid)).toEqual(pids);
    for (const p of cp.processes) {
      expect(p).toMatchObject({ comm: 'python3', argv: ['/usr/bin/python3', 'holder.py', D], cwd: D });
      if (fx.version >= 3) expect(p.exe).toBe('/usr/bin/python3.11');
      else expect('exe' in p).toBe(false); // the decoder's default for a format without exe
    }
    if (fx.main !== undefined) {
      const [main, thread] = [processOf(cp, fx.main), processOf(cp, fx.thread!)];
      expect(thread.tgid).toBe(fx.main);
      expect(thread.table).toBe(main.table); // a thread shares its table: stored once
      expect(processOf(cp, fx.child).table).not.toBe(main.table);
      expect(cp.tables).toHaveLength(2);
    }
  });

  test("the child's table, and the open files it shares with the main process", async () => {
    const { cp } = await read(fx);
    const child = processOf(cp, fx.child);
    expectTable(cp, child, CHILD_FDS);
    expect(fileAt(cp, child, 1)).toBe(fileAt(cp, child, 2));
    expect(fileAt(cp, child, 4)).not.toBe(fileAt(cp, child, 3));
    if (fx.main === undefined) return;
    const main = processOf(cp, fx.main);
    for (const fd of [0, 1, 2, 3]) expect(fileAt(cp, child, fd)).toBe(fileAt(cp, main, fd));
  });
});

describe.each(FIXTURES.filter((f) => f.main !== undefined))('$file: the main process', (fx) => {
  const owners = fx.version >= 3;

  test('every fd: type, flags, pos, path, close-on-exec, ignore mark', async () => {
    const { cp } = await read(fx);
    expectTable(cp, processOf(cp, fx.main!), mainFds(owners));
  });

  test('sharing: a dup and F_DUPFD_CLOEXEC share one open file, a second open does not', async () => {
    const { cp } = await read(fx);
    const at = (fd: number): FileRecord => fileAt(cp, processOf(cp, fx.main!), fd);
    expect(at(6)).toBe(at(5));
    expect(at(7)).toBe(at(3));
    expect(at(2)).toBe(at(1));
    const distinct = new Set([3, 4, 5].map(at));
    expect(distinct.size).toBe(3);
    expect(new Set([at(3).ino, at(4).ino, at(5).ino]).size).toBe(1); // one inode, three open files
    expect(cp.files).toHaveLength(25); // 27 fds, 3 of them dups; and the child's fd 4
  });

  test("each type's data", async () => {
    const { cp } = await read(fx);
    const at = (fd: number): FileRecord => fileAt(cp, processOf(cp, fx.main!), fd);
    expect(at(3).data).toEqual({ type: 'regular', size: 1000 });
    const pipe = at(9).data;
    expect(pipe).toMatchObject({
      type: 'pipe',
      end: 'read',
      bufferedBytes: 11,
      buffered: Buffer.from('hello, pipe'),
    });
    expect(at(10).data).toMatchObject({
      type: 'pipe',
      end: 'write',
      pipeIno: (pipe as { pipeIno: number }).pipeIno,
    });
    expect(at(11).data).toEqual({ type: 'eventfd', count: 42n, semaphore: false });
    expect(at(12).data).toEqual({ type: 'eventfd', count: 3n, semaphore: true });
    const SEAL_SHRINK = 2,
      SEAL_GROW = 4,
      SEAL_WRITE = 8;
    expect(at(13).data).toEqual({
      type: 'memfd',
      name: 'fixture',
      size: 60,
      seals: SEAL_SHRINK | SEAL_GROW | SEAL_WRITE,
      contents: Buffer.from('memfd contents\n'.repeat(4)),
    });
    const EPOLLIN = 1,
      EPOLLERR = 8,
      EPOLLHUP = 0x10,
      EPOLLET = 0x80000000;
    const targets = (at(14).data as { targets: unknown[] }).targets;
    expect(targets).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          tfd: 9,
          events: (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLET) >>> 0,
          data: 0x1111n,
          file: at(9).objref,
        }),
        expect.objectContaining({
          tfd: 11,
          events: EPOLLIN | EPOLLERR | EPOLLHUP,
          data: 0x2222n,
          file: at(11).objref,
        }),
      ]),
    );
    expect(targets).toHaveLength(2);
    expect(at(17).data).toMatchObject({
      type: 'socket',
      family: 1,
      sockType: 1,
      state: 'listen',
      localAddress: `${D}/listen.sock`,
      listen: { backlog: 7, reuseAddr: false },
    });
    expect(at(18).data).toMatchObject({
      type: 'socket',
      family: 2,
      sockType: 1,
      protocol: 6,
      state: 'listen',
      localAddress: `127.0.0.1:${fx.port}`,
      listen: { backlog: 5, reuseAddr: true, reusePort: false },
    });
    expect(at(19).data).toEqual({ type: 'signalfd', sigmask: 1n << 9n }); // SIGUSR1 is 10
    const timer = at(20).data as { type: string; clockid: number; intervalNs: bigint; valueNs: bigint };
    expect(timer).toMatchObject({ type: 'timerfd', clockid: 1, intervalNs: 5_000_000_000n, ticks: 0n });
    expect(timer.valueNs > 90_000_000_000n && timer.valueNs <= 100_000_000_000n).toBe(true);
    expect(at(21).data).toMatchObject({
      type: 'inotify',
      watches: [expect.objectContaining({ wd: 1, mask: 0x300, ino: at(8).ino })],
    });
    // Format 4 records the watched file's handle (what restore reopens); older formats have none.
    const [watch] = (at(21).data as { watches: { handle?: { bytes: Buffer } }[] }).watches;
    if (fx.version >= 4) expect(watch!.handle!.bytes.length).toBeGreaterThan(0);
    else expect(watch!.handle).toBeUndefined();
    const [a, b] = [at(23).data, at(24).data] as { state: string; sockIno: number; peerIno: number }[];
    expect([a!.state, b!.state]).toEqual(['connected', 'connected']);
    // Format 3's release restores socketpairs and records each end's peer; the older ones did not.
    if (owners) expect([a!.peerIno, b!.peerIno]).toEqual([b!.sockIno, a!.sockIno]);
    else expect([a!.peerIno, b!.peerIno]).toEqual([undefined, undefined]);
    expect(at(25).data).toMatchObject({ type: 'pipe', end: 'read', bufferedBytes: 0 });
  });

  test(
    owners
      ? 'the owner record: fd 25 signals the main pid with SIGUSR2'
      : 'no owner record (format 1 and 2 have none)',
    async () => {
      const { cp } = await read(fx);
      const owned = cp.files.filter((f) => f.owner !== undefined);
      if (owners) {
        expect(owned).toEqual([fileAt(cp, processOf(cp, fx.main!), 25)]);
        expect(owned[0]!.owner).toEqual({ kind: 'pid', id: fx.main, signal: 12 });
      } else expect(owned).toEqual([]);
    },
  );
});

describe('every readable version has a fixture', () => {
  const onDisk = readdirSync(DIR).filter((f) => f.endsWith('.fdckpt'));

  test('FORMAT_VERSION is readable and the newest readable version', () => {
    expect(READABLE_VERSIONS).toContain(FORMAT_VERSION);
    expect(Math.max(...READABLE_VERSIONS)).toBe(FORMAT_VERSION);
  });

  test.each([...READABLE_VERSIONS])('format %i: an image its release wrote is here', async (version) => {
    const versions = await Promise.all(onDisk.map(async (f) => (await readImageFile(join(DIR, f))).version));
    if (!versions.includes(version)) {
      throw new Error(
        `no fixture of format ${version} in test/fixtures/images: write one with that release (README.md, "Adding a version")`,
      );
    }
  });

  test('every fixture on disk is described (and checked) here', () => {
    expect(onDisk.sort()).toEqual(FIXTURES.map((f) => f.file).sort());
  });
});

describe('diff across format versions', () => {
  const byName = async (file: string): Promise<Checkpoint> =>
    (await readImageFile(join(DIR, file))).checkpoint;

  test('the same process captured by the format 1, 2 and 3 releases: no difference', async () => {
    const [v1, v2, v3] = await Promise.all(['v1.fdckpt', 'v2.fdckpt', 'v3.fdckpt'].map(byName));
    expect(diffCheckpoints(v1!, v3!)).toEqual([]);
    expect(diffCheckpoints(v3!, v1!)).toEqual([]);
    expect(diffCheckpoints(v1!, v2!)).toEqual([]);
  });

  test('and a changed offset in the format 3 image is the one difference found', async () => {
    const [v1, v3] = await Promise.all(['v1.fdckpt', 'v3.fdckpt'].map(byName));
    const child = v3!.processes[2]!;
    fileAt(v3!, child, 4).pos = 5;
    expect(diffCheckpoints(v1!, v3!).map((d) => d.message)).toEqual(['process 2 fd 4: pos 0 != 5']);
  });
});
