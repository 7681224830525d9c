/**
 * Capture's table read through libfdckpt-scan.so (one native call per fd table,
 * src/agent/linux/fdtable.ts) against node:fs reading the same /proc files one by one:
 * links, fdinfo (its common lines parsed natively, the rest as text), stat, status flags
 * and owners agree on 2k fds of every kind; a
 * fdinfo too long for a record is left to be read apart; copies stay open exactly for
 * the files whose type reads through them; a buffer of one record gives the same table;
 * a skipped mount gets no copy; nothing leaks; a process that is gone is an error that
 * says so.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import {
  constants,
  fstatSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  TABLE_MIN_BUFFER,
  closeCopies,
  readFdTable,
  readWholeFdTable,
  type TableEntry,
} from '../../src/agent/linux/fdtable.js';
import { ProcFdReader } from '../../src/agent/linux/procfd.js';
import { closeFd, pidfdOpen } from '../../src/agent/linux/process.js';
import { isGone } from '../../src/agent/linux/errors.js';
import { killAll, startPython, type Started } from '../support/cgtest.js';

const O_CLOEXEC = 0o2000000;
const started: Started[] = [];
let tmp: string;
let holder: Started;
let info: { owned: number; epoll: number; pipeR: number; memfd: number; file: number };

const HOLDER = (dir: string): string => `
import os, socket, select, fcntl, signal
keep = []
for i in range(1500):
    p = "${dir}/f%d" % i
    fd = os.open(p, [os.O_RDONLY, os.O_RDWR | os.O_CREAT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, os.O_RDWR | os.O_NONBLOCK | os.O_CREAT][i % 4] | (os.O_CREAT if i % 4 == 0 else 0), 0o600)
    if i % 4: os.write(fd, b"z" * (i % 97))
    if i % 3 == 0: os.set_inheritable(fd, True)
    keep.append(fd)
    if i % 10 == 9: keep.append(os.dup(fd))
file = keep[1]
r, w = os.pipe(); os.write(w, b"data"); keep += [r, w]
keep.append(socket.socketpair())
keep.append(os.eventfd(7))
keep.append(os.open("/dev/null", os.O_RDWR))
keep.append(os.open("${dir}", os.O_RDONLY | os.O_DIRECTORY))
keep.append(os.open("${dir}/f0", os.O_PATH))
m = os.memfd_create("m"); os.write(m, b"memfd"); keep.append(m)
owned = os.open("${dir}/f1", os.O_RDWR)
fcntl.fcntl(owned, fcntl.F_SETOWN, os.getpid())
fcntl.fcntl(owned, 10, signal.SIGUSR1)  # F_SETSIG
ep = select.epoll()
targets = [os.eventfd(0) for _ in range(600)]
for t in targets: ep.register(t, select.EPOLLIN)
ready({"owned": owned, "epoll": ep.fileno(), "pipeR": r, "memfd": m, "file": file})
import time; time.sleep(3600)
`;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'fdckpt-fdtable-'));
  holder = await startPython(HOLDER(tmp));
  started.push(holder);
  info = JSON.parse(holder.ready) as typeof info;
}, 60_000);

afterAll(async () => {
  await killAll(started);
  rmSync(tmp, { recursive: true, force: true });
});

/** Every entry ProcFdReader.table hands over, copies kept. */
function collect(r: ProcFdReader, pidfd: number, skip: number[], keep: boolean): TableEntry[] {
  const out: TableEntry[] = [];
  r.table(pidfd, skip, keep, (e) => {
    out.push({ ...e });
    e.copy = -1;
  });
  return out;
}

function withReader<T>(pid: number, body: (r: ProcFdReader, pidfd: number) => T): T {
  const pidfd = pidfdOpen(pid);
  const r = new ProcFdReader(pid);
  try {
    return body(r, pidfd);
  } finally {
    r.close();
    closeFd(pidfd);
  }
}

/** /proc/PID/fd and /proc/PID/fdinfo opened as directories, as ProcFdReader opens them. */
function openDirs(pid: number): { fdDir: number; infoDir: number } {
  const flags = constants.O_RDONLY | constants.O_DIRECTORY;
  return { fdDir: openSync(`/proc/${pid}/fd`, flags), infoDir: openSync(`/proc/${pid}/fdinfo`, flags) };
}

const ownFds = (): number => readdirSync('/proc/self/fd').length;
const byFd = (es: TableEntry[]): Map<number, TableEntry> => new Map(es.map((e) => [e.fd, e]));

describe('native fd table read', () => {
  test('agrees with /proc read fd by fd on 2k fds of every kind', () => {
    const before = ownFds();
    const entries = withReader(holder.pid, (r, pidfd) => collect(r, pidfd, [], false));
    try {
      const names = readdirSync(`/proc/${holder.pid}/fd`)
        .map(Number)
        .sort((a, b) => a - b);
      expect(entries.map((e) => e.fd)).toEqual(names);
      expect(entries.length).toBeGreaterThan(2200);
      for (const e of entries) {
        const where = `/proc/${holder.pid}/fd/${e.fd}`;
        expect(e.error).toBeUndefined();
        expect(e.link).toBe(readlinkSync(where));
        const text = readFileSync(`/proc/${holder.pid}/fdinfo/${e.fd}`, 'latin1');
        const head = /^pos:\t(\d+)\nflags:\t([0-7]+)\nmnt_id:\t(\d+)\nino:\t(\d+)\n/.exec(text)!;
        if (text.length > 16384) expect([e.common, e.fdinfo]).toEqual([undefined, undefined]);
        else
          expect(e.common).toEqual({
            pos: Number(head[1]),
            flags: parseInt(head[2]!, 8),
            mntId: Number(head[3]),
            ino: Number(head[4]),
          });
        // What follows the common lines (a pipe, a regular file: nothing; an eventfd: its count).
        if (text.length <= 16384) expect(e.fdinfo).toBe(text.slice(head[0].length));
        const st = statSync(where, { bigint: false });
        expect([e.stat!.dev, e.stat!.ino, e.stat!.mode, e.stat!.nlink, e.stat!.rdev]).toEqual([
          st.dev,
          st.ino,
          st.mode,
          st.nlink,
          st.rdev,
        ]);
        if (st.isFile()) expect(e.stat!.size).toBe(st.size);
        const flags = Number(/^flags:\s+([0-7]+)$/m.exec(text)![1]!.replace(/^/, '0o'));
        expect(e.statusFlags).toBe(flags & ~O_CLOEXEC);
        const throughCopy = !e.link.startsWith('/') || e.link.startsWith('/memfd:');
        expect(e.copy >= 0).toBe(throughCopy);
        if (e.copy >= 0) expect(fstatSync(e.copy).ino).toBe(st.ino);
        if (e.fd === info.owned) expect([e.owner, e.signal]).toEqual([{ kind: 'pid', id: holder.pid }, 10]);
        else if (e.owner !== undefined) expect(e.owner).toBeNull();
      }
      // The epoll's 600 targets make its fdinfo too long for one record.
      expect(byFd(entries).get(info.epoll)!.fdinfo).toBeUndefined();
      expect(byFd(entries).get(info.pipeR)!.copy).toBeGreaterThanOrEqual(0);
      expect(byFd(entries).get(info.memfd)!.copy).toBeGreaterThanOrEqual(0);
    } finally {
      closeCopies(entries);
    }
    expect(ownFds()).toBe(before);
  });

  test('one record per call, two small shares per call, one thread or two, few fds per call: the same table', () => {
    const strip = (es: TableEntry[]): unknown[] => es.map((e) => ({ ...e, copy: e.copy >= 0 }));
    const read = (buf?: Buffer, threads?: number, perCall?: number): TableEntry[] => {
      const pidfd = pidfdOpen(holder.pid);
      const { fdDir, infoDir } = openDirs(holder.pid);
      try {
        const r = { pid: holder.pid, fdDir, infoDir, pidfd, skipMounts: [], keepCopies: false };
        const es = readWholeFdTable(r, buf, threads, perCall);
        closeCopies(es);
        return es;
      } finally {
        closeFd(fdDir);
        closeFd(infoDir);
        closeFd(pidfd);
      }
    };
    const before = ownFds();
    const whole = strip(read(undefined, 1));
    expect(strip(read())).toEqual(whole);
    expect(strip(read(undefined, 2))).toEqual(whole);
    expect(strip(read(Buffer.alloc(TABLE_MIN_BUFFER), 2))).toEqual(whole);
    // Two shares that each hold about a hundred records: the second's work is redone call after call.
    expect(strip(read(Buffer.alloc(2 * TABLE_MIN_BUFFER + 4096), 2))).toEqual(whole);
    expect(strip(read(undefined, 2, 97))).toEqual(whole);
    expect(ownFds()).toBe(before);
    expect(() => read(Buffer.alloc(TABLE_MIN_BUFFER - 1))).toThrow(/below/);
  });

  test('a call leaves at most its share of copies open: each is closed before the next call', () => {
    const pidfd = pidfdOpen(holder.pid);
    const { fdDir, infoDir } = openDirs(holder.pid);
    const base = ownFds();
    let most = 0;
    let seen = 0;
    try {
      const r = { pid: holder.pid, fdDir, infoDir, pidfd, skipMounts: [], keepCopies: true };
      readFdTable(
        r,
        () => {
          // The entry's copy stays open until the call's entries are all handed over.
          if (seen++ % 25 === 0) most = Math.max(most, ownFds() - base);
        },
        undefined,
        2,
        200,
      );
    } finally {
      closeFd(fdDir);
      closeFd(infoDir);
      closeFd(pidfd);
    }
    expect(seen).toBeGreaterThan(2200);
    expect(most).toBeGreaterThan(100);
    expect(most).toBeLessThanOrEqual(201);
  });

  test('an fd on a skipped mount is read from /proc only: no copy, no stat', () => {
    const mnt = Number(
      /^mnt_id:\s+(\d+)$/m.exec(readFileSync(`/proc/${holder.pid}/fdinfo/${info.file}`, 'latin1'))![1],
    );
    const entries = withReader(holder.pid, (r, pidfd) => collect(r, pidfd, [mnt], true));
    try {
      const e = byFd(entries).get(info.file)!;
      expect([e.skipped, e.copy, e.stat, e.error]).toEqual([true, -1, undefined, undefined]);
      expect(e.common?.mntId).toBe(mnt);
      // Pipes are on pipefs, another mount: read as always.
      expect(byFd(entries).get(info.pipeR)!.skipped).toBe(false);
    } finally {
      closeCopies(entries);
    }
  });

  test('a process that is gone is an error that says so, and leaves no copy open', async () => {
    const victim = await startPython(
      'import os\nkeep = [os.pipe() for _ in range(50)]\nready({})\nimport time; time.sleep(60)',
    );
    started.push(victim);
    const pidfd = pidfdOpen(victim.pid);
    const { fdDir, infoDir } = openDirs(victim.pid);
    let before = 0;
    try {
      await killAll([victim]);
      before = ownFds();
      let err: unknown;
      try {
        readWholeFdTable({ pid: victim.pid, fdDir, infoDir, pidfd, skipMounts: [], keepCopies: true });
      } catch (e) {
        err = e;
      }
      expect(isGone(err)).toBe(true);
      expect(String(err)).toContain(`/proc/${victim.pid}/fd`);
      expect(ownFds()).toBe(before);
    } finally {
      closeFd(fdDir);
      closeFd(infoDir);
      closeFd(pidfd);
    }
  });
});
