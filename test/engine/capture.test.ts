/**
 * Capture against real processes (zdtm style): a child sets up fds, we capture
 * it and compare with /proc/PID/fdinfo fd by fd, and sharing with all-pairs kcmp.
 */
import { describe, expect, test } from '@jest/globals';
import { capture, CaptureError } from '../../src/agent/capture/index.js';
import type { Checkpoint, FileRecord, FileData } from '../../src/agent/model.js';
import { O } from '../../src/agent/model.js';
import { fdOf } from '../support/fixture.js';
import { useFixtures } from '../support/use-fixtures.js';

const fixture = useFixtures();
import { procFds, sharingTruth } from '../support/procfs.js';

function fileAt(cp: Checkpoint, pid: number, fd: number): FileRecord {
  const proc = cp.processes.find((p) => p.pid === pid)!;
  const entry = cp.tables.find((t) => t.objref === proc.table)!.fds.find((e) => e.fd === fd);
  if (!entry) throw new Error(`no fd ${fd} captured for pid ${pid}`);
  return cp.files.find((f) => f.objref === entry.file)!;
}

function dataAt<T extends FileData['type']>(
  cp: Checkpoint,
  pid: number,
  fd: number,
  type: T,
): Extract<FileData, { type: T }> {
  const file = fileAt(cp, pid, fd);
  expect(file.type).toBe(type);
  return file.data as Extract<FileData, { type: T }>;
}

/** Every fd of `pid` as /proc shows it equals what capture recorded. */
function expectMatchesProc(cp: Checkpoint, pid: number): void {
  const proc = cp.processes.find((p) => p.pid === pid)!;
  const table = cp.tables.find((t) => t.objref === proc.table)!;
  const truth = procFds(pid);
  expect(table.fds.map((e) => e.fd)).toEqual(truth.map((t) => t.fd));
  for (const t of truth) {
    const entry = table.fds.find((e) => e.fd === t.fd)!;
    const file = cp.files.find((f) => f.objref === entry.file)!;
    expect({ fd: t.fd, cloexec: entry.cloexec, flags: file.flags, path: file.path }).toEqual({
      fd: t.fd,
      cloexec: (t.flags & O.CLOEXEC) !== 0,
      flags: t.flags & ~O.CLOEXEC,
      path: t.link,
    });
    // Offsets of files shared with a live peer may move; the fixture is idle, so they must match.
    expect({ fd: t.fd, pos: file.pos }).toEqual({ fd: t.fd, pos: t.pos });
  }
}

/** Two fds share an objref exactly when kcmp says they are one open file. */
function expectSharingMatchesKcmp(cp: Checkpoint, pids: number[]): void {
  const all = pids.flatMap((pid) => procFds(pid).map((t) => ({ pid, fd: t.fd })));
  const truth = sharingTruth(all);
  const captured = new Set<string>();
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      const a = all[i]!;
      const b = all[j]!;
      if (fileAt(cp, a.pid, a.fd).objref === fileAt(cp, b.pid, b.fd).objref)
        captured.add(`${a.pid}:${a.fd}=${b.pid}:${b.fd}`);
    }
  }
  expect([...captured].sort()).toEqual([...truth].sort());
}

describe('capture of one process', () => {
  test('regular files, dirs and devices: flags, offsets, dup/dup2/F_DUPFD_CLOEXEC sharing', async () => {
    const fx = await fixture('files');
    const { checkpoint: cp, problems } = capture([fx.pid]);
    expect(problems).toEqual([]);
    expectMatchesProc(cp, fx.pid);
    expectSharingMatchesKcmp(cp, [fx.pid]);

    const a = fileAt(cp, fx.pid, fdOf(fx, 'a'));
    expect(a).toMatchObject({
      type: 'regular',
      pos: 17,
      path: `${fx.dir}/data.txt`,
      data: { type: 'regular', size: 1000 },
    });
    expect(a.flags & O.ACCMODE).toBe(O.RDONLY);
    expect(fileAt(cp, fx.pid, fdOf(fx, 'b')).flags & (O.APPEND | O.ACCMODE)).toBe(O.APPEND | O.WRONLY);
    const c = fileAt(cp, fx.pid, fdOf(fx, 'c'));
    expect(c.flags & (O.NONBLOCK | O.ACCMODE)).toBe(O.NONBLOCK | O.RDWR);
    // dup2 to 900 and F_DUPFD_CLOEXEC to 500 share the open file, stored once.
    expect(fileAt(cp, fx.pid, 900).objref).toBe(c.objref);
    expect(fileAt(cp, fx.pid, fdOf(fx, 'cloexec_dup')).objref).toBe(a.objref);
    const table = cp.tables[0]!;
    expect(table.fds.find((e) => e.fd === fdOf(fx, 'cloexec_dup'))!.cloexec).toBe(true);
    expect(table.fds.find((e) => e.fd === fdOf(fx, 'b'))!.cloexec).toBe(false);
    // a, b, c and the O_PATH handle are four open files of data.txt; the dups add none.
    expect(cp.files.filter((f) => f.path === `${fx.dir}/data.txt`)).toHaveLength(4);
    expect(fileAt(cp, fx.pid, fdOf(fx, 'dir')).type).toBe('directory');
    expect(fileAt(cp, fx.pid, fdOf(fx, 'devnull'))).toMatchObject({ type: 'regular', path: '/dev/null' });
    expect(fileAt(cp, fx.pid, fdOf(fx, 'opath'))).toMatchObject({ type: 'regular', flags: O.PATH });
    expect(fileAt(cp, fx.pid, fdOf(fx, 'opath_sock'))).toMatchObject({
      type: 'regular',
      path: `${fx.dir}/listen.sock`,
    });
    expect(cp.processes[0]).toMatchObject({ pid: fx.pid, tgid: fx.pid, comm: 'python3' });
    expect(cp.processes[0]!.argv.slice(-1)).toEqual(['files']);
  });

  test('pipes: ends, buffered bytes copied without consuming them; fifos by path', async () => {
    const fx = await fixture('pipes', 'fifo');
    const { checkpoint: cp, problems } = capture([fx.pid]);
    expect(problems).toEqual([]);
    expectMatchesProc(cp, fx.pid);
    const r = dataAt(cp, fx.pid, fdOf(fx, 'pipe_r'), 'pipe');
    const w = dataAt(cp, fx.pid, fdOf(fx, 'pipe_w'), 'pipe');
    expect(r).toMatchObject({ end: 'read', bufferedBytes: 11 });
    expect(r.buffered?.toString()).toBe('hello, pipe');
    expect(w).toMatchObject({ end: 'write', bufferedBytes: 11, pipeIno: r.pipeIno });
    expect(w.buffered).toBeUndefined();
    // Still there: capture must not consume the pipe.
    expect(
      capture([fx.pid]).checkpoint.files.find((f) => f.data.type === 'pipe' && f.data.bufferedBytes === 11),
    ).toBeDefined();
    expect(fileAt(cp, fx.pid, fdOf(fx, 'pipe2_r')).flags & O.NONBLOCK).toBe(O.NONBLOCK);
    expect(fileAt(cp, fx.pid, fdOf(fx, 'fifo_r'))).toMatchObject({ type: 'fifo', path: `${fx.dir}/fifo` });
    expect(fileAt(cp, fx.pid, fdOf(fx, 'fifo_w')).flags & O.ACCMODE).toBe(O.WRONLY);
  });

  test('eventfd count and semaphore mode; epoll targets resolved to the captured pipe', async () => {
    const fx = await fixture('eventfd', 'epoll');
    const { checkpoint: cp, problems } = capture([fx.pid]);
    expect(problems).toEqual([]);
    expectMatchesProc(cp, fx.pid);
    expect(dataAt(cp, fx.pid, fdOf(fx, 'eventfd'), 'eventfd')).toEqual({
      type: 'eventfd',
      count: 42n,
      semaphore: false,
    });
    expect(dataAt(cp, fx.pid, fdOf(fx, 'eventfd_sem'), 'eventfd')).toEqual({
      type: 'eventfd',
      count: 3n,
      semaphore: true,
    });
    const ep = dataAt(cp, fx.pid, fdOf(fx, 'epoll'), 'eventpoll');
    const target = fileAt(cp, fx.pid, fdOf(fx, 'epoll_target'));
    expect(ep.targets).toEqual([
      // EPOLLIN|EPOLLET as registered, plus EPOLLERR|EPOLLHUP which the kernel always adds.
      {
        tfd: fdOf(fx, 'epoll_target'),
        events: 0x80000019,
        data: BigInt(fdOf(fx, 'epoll_target')),
        ino: target.ino,
        file: target.objref,
      },
    ]);
  });
});

test('an epoll with 2000 targets: fdinfo larger than one read, every target resolved', async () => {
  const fx = await fixture('big-epoll');
  const { checkpoint: cp } = capture([fx.pid]);
  const targets = dataAt(cp, fx.pid, fdOf(fx, 'big_epoll'), 'eventpoll').targets;
  expect(targets).toHaveLength(2000);
  expect(targets.every((t) => t.file !== undefined && fileAt(cp, fx.pid, t.tfd).objref === t.file)).toBe(
    true,
  );
});

describe('types recorded but not restorable are refused unless ignored', () => {
  test('pty refused; socketpair, listening socket, memfd, signalfd, timerfd recorded', async () => {
    const fx = await fixture('sockets', 'ptys', 'memfd', 'signalfd-timerfd');
    const { checkpoint: cp, problems } = capture([fx.pid]);
    expectMatchesProc(cp, fx.pid);
    const sa = dataAt(cp, fx.pid, fdOf(fx, 'sock_a'), 'socket');
    expect(sa).toMatchObject({ family: 1, sockType: 1, state: 'connected' });
    expect(dataAt(cp, fx.pid, fdOf(fx, 'listener'), 'socket')).toMatchObject({
      family: 2,
      state: 'listen',
      localAddress: `127.0.0.1:${fdOf(fx, 'port')}`,
    });
    const ptsIndex = Number(String(fx.info.pty_name).replace('/dev/pts/', ''));
    expect(dataAt(cp, fx.pid, fdOf(fx, 'pty_master'), 'tty')).toEqual({
      type: 'tty',
      index: ptsIndex,
      master: true,
    });
    expect(dataAt(cp, fx.pid, fdOf(fx, 'pty_slave'), 'tty')).toEqual({
      type: 'tty',
      index: ptsIndex,
      master: false,
    });
    expect(dataAt(cp, fx.pid, fdOf(fx, 'memfd'), 'memfd')).toEqual({
      type: 'memfd',
      name: 'fdckpt-test',
      size: 4096,
      seals: 1, // made without MFD_ALLOW_SEALING
      contents: Buffer.alloc(4096, 'x'),
    });
    expect(dataAt(cp, fx.pid, fdOf(fx, 'signalfd'), 'signalfd').sigmask).toBe(1n << 9n); // SIGUSR1 = 10
    expect(dataAt(cp, fx.pid, fdOf(fx, 'timerfd'), 'timerfd')).toMatchObject({
      clockid: 1,
      intervalNs: 5_000_000_000n,
    });

    const refused = (fd: number): string | undefined => problems.find((p) => p.fd === fd)?.message;
    // Both ends of the socketpair are in the process: recreated by socketpair(2) (socketpair.test.ts).
    expect(refused(fdOf(fx, 'sock_a'))).toBeUndefined();
    expect(refused(fdOf(fx, 'sock_b'))).toBeUndefined();
    for (const role of ['pty_master', 'pty_slave']) {
      expect(problems.find((p) => p.fd === fdOf(fx, role))).toMatchObject({
        kind: 'unsupported',
        pid: fx.pid,
      });
    }
    // memfd, signalfd and timerfd are restorable (test/replay/memfd.test.ts, timers.test.ts).
    for (const role of ['memfd', 'signalfd', 'timerfd'])
      expect(problems.find((p) => p.fd === fdOf(fx, role))).toBeUndefined();

    const ignored = capture([fx.pid], { ignoreTypes: ['socket', 'tty'] });
    expect(ignored.problems).toEqual([]);
    expect(fileAt(ignored.checkpoint, fx.pid, fdOf(fx, 'sock_b')).ignored).toEqual({ reason: 'type' });
  });

  test('a memfd too large to copy is refused, naming its size', async () => {
    const fx = await fixture('big-memfd');
    const fd = fdOf(fx, 'big_memfd');
    const { checkpoint: cp, problems } = capture([fx.pid]);
    expect(dataAt(cp, fx.pid, fd, 'memfd')).toEqual({
      type: 'memfd',
      name: 'fdckpt-big',
      size: 65 << 20,
      seals: 1,
    });
    expect(problems).toEqual([
      expect.objectContaining({
        kind: 'unsupported',
        fd,
        message: `pid ${fx.pid} fd ${fd} (/memfd:fdckpt-big (deleted)): memfd of ${65 << 20} bytes: contents above ${64 << 20} bytes are not captured`,
        ignoreType: 'memfd',
      }),
    ]);
  });

  test('unlinked file, flock-held file refused by message; an F_SETOWN owner recorded', async () => {
    const fx = await fixture('unlinked', 'flock', 'owner');
    const { checkpoint: cp, problems } = capture([fx.pid]);
    const byFd = new Map(problems.map((p) => [p.fd, p]));
    expect(byFd.get(fdOf(fx, 'unlinked'))).toMatchObject({
      kind: 'unlinked',
      message: `pid ${fx.pid} fd ${fdOf(fx, 'unlinked')} (${fx.dir}/gone.txt (deleted)): the file was unlinked and cannot be reopened by name`,
    });
    expect(byFd.get(fdOf(fx, 'locked'))?.kind).toBe('locked');
    expect(byFd.get(fdOf(fx, 'locked'))?.message).toMatch(
      new RegExp(
        `^pid ${fx.pid} fd ${fdOf(fx, 'locked')} \\(${fx.dir}/locked.txt\\): holds a lock or lease \\(1: FLOCK +ADVISORY +WRITE`,
      ),
    );
    // Its owner is the captured process itself: recorded, and restored mapped to the new one.
    expect(byFd.get(fdOf(fx, 'owned'))).toBeUndefined();
    expect(fileAt(cp, fx.pid, fdOf(fx, 'owned')).owner).toEqual({ kind: 'pid', id: fx.pid, signal: 0 });
    expect(problems).toHaveLength(2);

    const ignoreFds = ['unlinked', 'locked'].map((r) => ({ pid: fx.pid, fd: fdOf(fx, r) }));
    const ok = capture([fx.pid], { ignoreFds });
    expect(ok.problems).toEqual([]);
    expect(fileAt(ok.checkpoint, fx.pid, fdOf(fx, 'locked')).ignored).toEqual({ reason: 'fd' });

    // The same by path (a Checkpoint's spec.ignore.paths): exact, or a directory ending in '/'.
    const byPath = capture([fx.pid], { ignorePaths: [`${fx.dir}/locked.txt`, `${fx.dir}/`] });
    expect(byPath.problems).toEqual([]);
    expect(fileAt(byPath.checkpoint, fx.pid, fdOf(fx, 'locked')).ignored).toEqual({ reason: 'fd' });
    const exact = capture([fx.pid], { ignorePaths: [`${fx.dir}/locked.txt`, fx.dir] });
    expect(exact.problems.map((p) => p.kind)).toEqual(['unlinked']);
  });

  test('ignoring one fd of a shared open file, or an fd that does not exist, is an error', async () => {
    const fx = await fixture('files');
    expect(() => capture([fx.pid], { ignoreFds: [{ pid: fx.pid, fd: 900 }] })).toThrow(
      `pid ${fx.pid} fd 900 shares its open file (${fx.dir}/data.txt) with pid ${fx.pid} fd ${fdOf(fx, 'c')}, which is not ignored: ignore all of them or none`,
    );
    expect(() => capture([fx.pid], { ignoreFds: [{ pid: fx.pid, fd: 4321 }] })).toThrow(
      `--ignore-fd ${fx.pid}:4321: pid ${fx.pid} has no fd 4321`,
    );
  });
});

describe('several tasks', () => {
  test('threads share one file table, stored once', async () => {
    const fx = await fixture('files', 'threads');
    const tids = fx.info.threads as number[];
    expect(tids.length).toBe(2);
    const { checkpoint: cp } = capture(tids);
    expect(cp.processes).toHaveLength(2);
    expect(cp.tables).toHaveLength(1);
    expect(new Set(cp.processes.map((p) => p.table)).size).toBe(1);
    expect(cp.processes.map((p) => p.tgid)).toEqual([fx.pid, fx.pid]);
  });

  test('a forked child sharing an open file with its parent: one file record, cross-process', async () => {
    const fx = await fixture('fork-shared');
    const child = fx.info.child as number;
    const { checkpoint: cp } = capture([fx.pid, child]);
    expect(cp.tables).toHaveLength(2);
    const shared = fdOf(fx, 'shared');
    expect(fileAt(cp, child, shared).objref).toBe(fileAt(cp, fx.pid, shared).objref);
    expect(fileAt(cp, child, shared).pos).toBe(40);
    expectSharingMatchesKcmp(cp, [fx.pid, child]);
  });

  test('many distinct files: exact, and distinct inodes cost no kcmp at all', async () => {
    const fx = await fixture.withEnv({ FDPROC_MANY: '400' }, 'many', 'pipes');
    const { checkpoint: cp, stats } = capture([fx.pid]);
    expectMatchesProc(cp, fx.pid);
    expectSharingMatchesKcmp(cp, [fx.pid]);
    // Only the pipe ends share inodes: each pipe bucket needs one comparison.
    expect(stats.kcmpCalls).toBeLessThanOrEqual(4);
  });

  test('one inode shared by n distinct files: dedup makes O(n log n) kcmp calls, not n²/2', async () => {
    const n = 512;
    const fx = await fixture.withEnv({ FDPROC_MANY: String(n) }, 'many-eventfds');
    const { checkpoint: cp, stats } = capture([fx.pid]);
    expect(cp.files.filter((f) => f.type === 'eventfd')).toHaveLength(n);
    expectSharingMatchesKcmp(cp, [fx.pid]);
    // Binary insertion: at most ceil(log2(k+1)) comparisons for the k-th file.
    let bound = 0;
    for (let k = 1; k <= stats.files; k++) bound += Math.ceil(Math.log2(k + 1));
    expect(stats.kcmpCalls).toBeLessThanOrEqual(bound);
    expect(stats.kcmpCalls).toBeLessThan((n * n) / 20);
  });
});

describe('processes that vanish', () => {
  test('a pid that is gone is a CaptureError naming it', async () => {
    const fx = await fixture('files');
    const pid = fx.pid;
    await fx.stop();
    expect(() => capture([pid])).toThrow(CaptureError);
    expect(() => capture([pid])).toThrow(new RegExp(`^pid ${pid} exited during capture`));
  });
});
