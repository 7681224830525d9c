/**
 * The host scan through libfdckpt-scan.so (one native call per fd table) against
 * the per-fd path it replaced, done here with node:fs (readdir, then readlink and
 * stat of every /proc/PID/fd/N): the same hits, unreadable processes and fd counts
 * on holders of 20k and 3k fds of every kind, a PATH_MAX-long link among them; the same
 * links when the buffer holds a single record; processes that exit and fds that
 * close under the scan.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scanPids, type HostFdHit } from '../../../src/agent/collect/hostscan.js';
import { bracketIno, inodeKey, ptyKey, ptySlaveIndex } from '../../../src/agent/procfs/keys.js';
import { FdDir, LINKS_MIN_BUFFER, scanLibPath } from '../../../src/agent/linux/hostfd.js';
import { killAll, startPython, type Started } from '../../support/cgtest.js';

const started: Started[] = [];
let tmp: string;
let longFile: string;

// 20k fds of every kind the scan tells apart, with holes in the fd numbers.
const HOLDER = (n: number, long: string): string => `
import os, socket, resource, select, time
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
keep = []
gone = open("${long}.gone", "w"); os.unlink("${long}.gone"); keep.append(gone)
master, slave = os.openpty(); keep += [master, slave]
keep.append(os.open("${long}", os.O_RDONLY))
keep.append(os.open("/dev/null", os.O_RDONLY))
keep.append(os.open("/etc", os.O_RDONLY | os.O_DIRECTORY))
keep.append(select.epoll())
keep.append(os.memfd_create("m"))
nfds = 8
while nfds < ${n}:
    r, w = os.pipe(); keep += [r, w]
    keep.append(socket.socketpair())
    keep.append(os.open("/etc/hostname", os.O_RDONLY))
    keep.append(os.open("/etc/hosts", os.O_RDONLY))
    keep.append(os.eventfd(0))
    nfds += 7
    if nfds % 97 < 7: os.close(r); nfds -= 1
r, w = os.pipe()
ready({"pipe": "pipe:[%d]" % os.fstat(r).st_ino, "slave": os.ttyname(slave)})
time.sleep(3600)
`;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'fdckpt-native-scan-'));
  // A path as long as a link can be: /proc builds links in one page (4096 bytes with the NUL).
  let dir = tmp;
  while (dir.length < 4095 - 250) {
    dir = join(dir, 'd'.repeat(Math.min(200, 4095 - 250 - dir.length)));
    mkdirSync(dir);
  }
  longFile = join(dir, 'f'.repeat(4095 - dir.length - 1 - '.gone'.length));
  rmSync(longFile, { force: true });
  readdirSync(dir); // exists
  await import('node:fs').then((fs) => fs.writeFileSync(longFile, 'x'));
  started.push(await startPython(HOLDER(19_900, longFile)));
  started.push(await startPython(HOLDER(3_000, longFile)));
}, 60_000);

afterAll(async () => {
  await killAll(started);
  rmSync(tmp, { recursive: true, force: true });
});

/** The link of /proc/PID/fd/N, or undefined (a deleted file's link is 10 bytes longer: ENAMETOOLONG). */
function readLink(pid: number, name: string): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/fd/${name}`);
  } catch {
    return undefined;
  }
}

/** The old per-fd path: readdir, then readlink (and stat for paths) of every fd by name. */
function perFdScan(pids: number[], keys: ReadonlySet<string>): { hits: HostFdHit[]; fds: number } {
  const hits: HostFdHit[] = [];
  let fds = 0;
  for (const pid of pids) {
    for (const name of readdirSync(`/proc/${pid}/fd`)) {
      fds++;
      const fd = Number(name);
      const link = readLink(pid, name);
      if (link === undefined) continue;
      let key: string | undefined = bracketIno(link) >= 0 ? link : undefined;
      if (link.startsWith('/')) {
        const st = statSync(`/proc/${pid}/fd/${name}`);
        key = inodeKey(st.dev, st.ino);
        if (st.isCharacterDevice() && !keys.has(key)) {
          const slave = ptySlaveIndex(st.rdev);
          const m = /^tty-index:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1'));
          key =
            slave >= 0
              ? ptyKey(st.dev, slave)
              : m && link.endsWith('ptmx')
                ? ptyKey(statSync('/dev/pts').dev, Number(m[1]))
                : undefined;
        }
      }
      if (key !== undefined && keys.has(key)) hits.push({ pid, fd, link, key });
    }
  }
  return { hits, fds };
}

const order = (hits: HostFdHit[]): string[] => hits.map((h) => `${h.pid}:${h.fd}:${h.key}:${h.link}`).sort();

describe('native host scan', () => {
  test('finds exactly what the per-fd path finds, on 23k fds of every kind', () => {
    const pids = started.map((s) => s.pid);
    const ready = started.map((s) => JSON.parse(s.ready) as { pipe: string; slave: string });
    const slave = statSync(ready[0]!.slave);
    const hosts = statSync('/etc/hosts');
    const long = statSync(longFile);
    const pipeInos = readdirSync(`/proc/${pids[0]}/fd`)
      .map((n) => readLink(pids[0]!, n) ?? '')
      .filter((l) => l.startsWith('pipe:') || l.startsWith('socket:'))
      .filter((_, i) => i % 50 === 0);
    const keys = new Set([
      ...ready.map((r) => r.pipe),
      ...pipeInos,
      inodeKey(hosts.dev, hosts.ino),
      inodeKey(long.dev, long.ino),
      ptyKey(slave.dev, ptySlaveIndex(slave.rdev)),
    ]);
    const want = perFdScan(pids, keys);
    let i = 0;
    const got = scanPids({ keys, anonLinks: new Set() }, pids, new Set(), () => (i < pids.length ? i++ : -1));
    expect(got.fds).toBe(want.fds);
    expect(got.fds).toBeGreaterThan(22_800);
    expect(got.processes).toBe(2);
    expect(got.unreadable).toEqual([]);
    expect(order(got.hits)).toEqual(order(want.hits));
    // Every kind of key was hit: pipes and sockets, a file, the long path, both pty ends.
    expect(new Set(got.hits.map((h) => h.key))).toEqual(keys);
    expect(got.hits.some((h) => h.link === longFile)).toBe(true);
  });

  test('a buffer of one record lists the same links as one of 1 MiB', () => {
    const pid = started[0]!.pid;
    const want = readdirSync(`/proc/${pid}/fd`).map((n) => `${n} ${readLink(pid, n)}`);
    // The deleted file's link does not fit a page: unreadable on both paths.
    expect(want).toContain('3 undefined');
    for (const buf of [undefined, Buffer.alloc(LINKS_MIN_BUFFER), Buffer.alloc(64 * 1024)]) {
      const dir = FdDir.open(pid)!;
      const got: string[] = [];
      const n = dir.links((fd, link) => got.push(`${fd} ${link}`), buf);
      dir.close();
      expect(n).toBe(want.length);
      expect(got.sort()).toEqual(want.sort());
    }
    const dir = FdDir.open(pid)!;
    expect(() => dir.links(() => undefined, Buffer.alloc(LINKS_MIN_BUFFER - 1))).toThrow(/below/);
    dir.close();
  });

  test('a process that exits under the scan reads as gone; fds closed meanwhile are skipped', async () => {
    const p = await startPython('import time\nready({})\ntime.sleep(3600)\n');
    const dir = FdDir.open(p.pid)!;
    await killAll([p]);
    expect(dir.links(() => undefined)).toBeUndefined();
    dir.close();
    expect(FdDir.open(p.pid)).toBeUndefined();
    // A holder that opens and closes fds as fast as it can: every call lists a table, never throws.
    const churn = await startPython(
      'import os, threading\nready({})\nwhile True:\n    fds = [os.open("/etc/hosts", os.O_RDONLY) for _ in range(500)]\n    for f in fds: os.close(f)\n',
    );
    started.push(churn);
    for (let k = 0; k < 50; k++) {
      const d = FdDir.open(churn.pid)!;
      const n = d.links(
        (_, link) => expect(link === undefined || link.length > 0).toBe(true),
        Buffer.alloc(LINKS_MIN_BUFFER),
      );
      d.close();
      expect(n).toBeGreaterThanOrEqual(3);
    }
  });

  test('a missing library is an error naming its path', () => {
    const saved = process.env['FDCKPT_SCAN_LIB'];
    process.env['FDCKPT_SCAN_LIB'] = join(tmp, 'nope.so');
    try {
      expect(() => scanLibPath()).toThrow(`${join(tmp, 'nope.so')} ($FDCKPT_SCAN_LIB) is missing`);
    } finally {
      if (saved === undefined) delete process.env['FDCKPT_SCAN_LIB'];
      else process.env['FDCKPT_SCAN_LIB'] = saved;
    }
    expect(scanLibPath()).toMatch(/native\/build\/libfdckpt-scan\.so$/);
  });
});
