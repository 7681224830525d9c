import { afterEach, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { O, type FileRecord } from '../../src/agent/model.js';
import { restore } from '../../src/agent/replay/index.js';
import { PYTHON, checkpointOf, fileOf, liveTable, waitAsleep, trackRestored } from './support.js';

const started = trackRestored();
const dirs: string[] = [];

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmpdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'replay-'));
  dirs.push(d);
  return d;
}

function pipeEnd(ino: number, end: 'read' | 'write', flags: number, buffered?: string): FileRecord {
  const bytes = buffered === undefined ? undefined : Buffer.from(buffered);
  return fileOf('pipe', `pipe:[${ino}]`, flags | (end === 'read' ? O.RDONLY : O.WRONLY), 0, {
    type: 'pipe',
    pipeIno: ino,
    end,
    bufferedBytes: bytes?.length ?? 0,
    ...(bytes && end === 'read' ? { buffered: bytes } : {}),
  });
}

/**
 * Restores `cp` into python3 running `script` (with the report path as argv[1])
 * and returns what it reported; the program checks its restored fds itself.
 */
async function runChecker(
  cp: ReturnType<typeof checkpointOf>,
  script: string,
  batch: boolean,
): Promise<unknown> {
  const report = path.join(tmpdir(), 'report.json');
  const body = script
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
  const wrapped = `${PY_REPORT}\nimport traceback\ntry:\n${body}\nexcept BaseException:\n    report({'error': traceback.format_exc()})\n`;
  const r = await restore(cp, [PYTHON, '-c', wrapped, report], { stdio: 'ignore', batch });
  started.push(r);
  const status = await r.exit;
  started.pop();
  const text = fs.existsSync(report) ? fs.readFileSync(report, 'utf8') : '(no report)';
  expect({ status, text }).toMatchObject({ status: 0 });
  return JSON.parse(text);
}

const PY_REPORT = `
import os, sys, json, select, stat, fcntl
def report(d):
    with open(sys.argv[1], 'w') as f: json.dump(d, f)
`;

describe.each([true, false])('restore (batched: %s)', (batch) => {
  test('pipes: both ends placed, buffered bytes refilled, lone ends still a pipe', async () => {
    const r0 = pipeEnd(9001, 'read', 0, 'abc');
    const w0 = pipeEnd(9001, 'write', O.NONBLOCK);
    const lonely = pipeEnd(9002, 'read', 0, 'zz');
    const lonelyW = pipeEnd(9003, 'write', 0);
    // Read end at 6 and write end at 5: the write end is created at a lower number
    // than the read end's target, exercising the conflict path.
    const swapR = pipeEnd(9004, 'read', 0, 'q');
    const swapW = pipeEnd(9004, 'write', 0);
    const cp = checkpointOf([
      { fd: 0, file: r0 },
      { fd: 1, file: w0, cloexec: true },
      { fd: 2, file: w0 },
      { fd: 3, file: lonely },
      { fd: 4, file: lonelyW },
      { fd: 5, file: swapW },
      { fd: 6, file: swapR },
    ]);
    const script = `
a = os.read(0, 3)
os.write(2, b'xy')
b = os.read(0, 2)
c = os.read(3, 2)
lone = stat.S_ISFIFO(os.fstat(4).st_mode)
os.write(5, b'!')
d = os.read(6, 2)
report({'a': a.decode(), 'b': b.decode(), 'c': c.decode(), 'd': d.decode(), 'lone': lone,
        'nb': bool(os.get_blocking(1) is False), 'cloexec1': not os.get_inheritable(1), 'cloexec2': not os.get_inheritable(2)})
`;
    expect(await runChecker(cp, script, batch)).toEqual({
      a: 'abc',
      b: 'xy',
      c: 'zz',
      d: 'q!',
      lone: true,
      nb: true,
      cloexec1: true,
      cloexec2: false,
    });
  });

  test('a pipe whose write end lands among several read-end targets keeps its ends apart', async () => {
    // pipe2 gives 0 (read) and 1 (write); 1 and 2 are read targets too, 3 the write end.
    const r = pipeEnd(9201, 'read', 0);
    const w = pipeEnd(9201, 'write', 0);
    const cp = checkpointOf([
      { fd: 0, file: r },
      { fd: 1, file: r },
      { fd: 2, file: r },
      { fd: 3, file: w },
    ]);
    const script = `
os.write(3, b'k')
a = os.read(2, 1)
modes = [os.readlink(f'/proc/self/fd/{i}')[:5] + ('w' if fcntl.fcntl(i, fcntl.F_GETFL) & 3 else 'r') for i in range(4)]
report({'a': a.decode(), 'modes': modes})
`;
    expect(await runChecker(cp, script, batch)).toEqual({
      a: 'k',
      modes: ['pipe:r', 'pipe:r', 'pipe:r', 'pipe:w'],
    });
  });

  test('eventfd and epoll: counts, semaphore mode, registrations with events and data', async () => {
    const ev = fileOf('eventfd', 'anon_inode:[eventfd]', O.RDWR, 0, {
      type: 'eventfd',
      count: 5n,
      semaphore: true,
    });
    const big = fileOf('eventfd', 'anon_inode:[eventfd]', O.RDWR | O.NONBLOCK, 0, {
      type: 'eventfd',
      count: 1n << 40n,
      semaphore: false,
    });
    const ep = fileOf('eventpoll', 'anon_inode:[eventpoll]', O.RDWR, 0, {
      type: 'eventpoll',
      targets: [{ tfd: 8, events: 1, data: 0x1234n, ino: 0, file: ev.objref }],
    });
    const cp = checkpointOf([
      { fd: 3, file: ep, cloexec: true },
      { fd: 8, file: ev },
      { fd: 9, file: big },
    ]);
    const script = `
p = select.epoll.fromfd(3).poll(0)
one = int.from_bytes(os.read(8, 8), 'little')
bigc = int.from_bytes(os.read(9, 8), 'little')
try:
    os.read(9, 8); again = False
except BlockingIOError:
    again = True
report({'poll': p, 'one': one, 'big': bigc, 'again': again})
`;
    expect(await runChecker(cp, script, batch)).toEqual({
      poll: [[0x1234, 1]],
      one: 1,
      big: 2 ** 40,
      again: true,
    });
  });
});

describe('restore: tables as fdinfo shows them', () => {
  test('epoll registered under the saved tfd, eventfd count in fdinfo, sparse high fds', async () => {
    const ev = fileOf('eventfd', 'anon_inode:[eventfd]', O.RDWR, 0, {
      type: 'eventfd',
      count: 7n,
      semaphore: false,
    });
    const ep = fileOf('eventpoll', 'anon_inode:[eventpoll]', O.RDWR, 0, {
      type: 'eventpoll',
      targets: [{ tfd: 4000, events: 0x80000001, data: 0xdeadbeefn, ino: 0, file: ev.objref }],
    });
    const cp = checkpointOf([
      { fd: 2, file: ep },
      { fd: 17, file: ev },
      { fd: 4000, file: ev, cloexec: true },
    ]);
    const r = await restore(cp, ['sleep', '60'], { stdio: 'ignore' });
    started.push(r);
    await waitAsleep(r.pid);
    const live = liveTable(r.pid);
    expect([...live.keys()]).toEqual([2, 17, 4000]);
    expect(live.get(17)!.lines['eventfd-count']?.trim()).toBe('7');
    expect(live.get(4000)!.flags & O.CLOEXEC).toBe(O.CLOEXEC);
    expect(live.get(2)!.tfds).toHaveLength(1);
    // The kernel always adds EPOLLERR and EPOLLHUP (0x18): a captured mask already has them.
    expect(live.get(2)!.tfds[0]).toMatch(/^4000 events: 80000019 data: deadbeef /);
  });

  test('a fifo by path, in both directions', async () => {
    const d = tmpdir();
    const fifo = path.join(d, 'f');
    execFileSync('mkfifo', [fifo]);
    const rd = fileOf('fifo', fifo, O.RDONLY, 0, { type: 'fifo' });
    const wr = fileOf('fifo', fifo, O.WRONLY, 0, { type: 'fifo' });
    const cp = checkpointOf([
      { fd: 5, file: wr },
      { fd: 6, file: rd },
    ]);
    const r = await restore(cp, ['sleep', '60'], { stdio: 'ignore' });
    started.push(r);
    await waitAsleep(r.pid);
    const live = liveTable(r.pid);
    expect([...live.keys()]).toEqual([5, 6]);
    expect(live.get(5)!.flags & O.ACCMODE).toBe(O.WRONLY);
    expect(live.get(6)!.flags & O.ACCMODE).toBe(O.RDONLY);
    expect(live.get(6)!.link).toBe(fifo);
  });

  test('nested epolls are ordered after their targets (retry until no progress)', async () => {
    const ev = fileOf('eventfd', 'anon_inode:[eventfd]', O.RDWR, 0, {
      type: 'eventfd',
      count: 1n,
      semaphore: false,
    });
    const inner = fileOf('eventpoll', 'anon_inode:[eventpoll]', O.RDWR, 0, {
      type: 'eventpoll',
      targets: [{ tfd: 7, events: 0x19, data: 7n, ino: 0, file: ev.objref }],
    });
    const outer = fileOf('eventpoll', 'anon_inode:[eventpoll]', O.RDWR, 0, {
      type: 'eventpoll',
      targets: [{ tfd: 5, events: 0x19, data: 5n, ino: 0, file: inner.objref }],
    });
    const cp = checkpointOf([
      { fd: 3, file: outer },
      { fd: 5, file: inner },
      { fd: 7, file: ev },
    ]);
    const r = await restore(cp, ['sleep', '60'], { stdio: 'ignore' });
    started.push(r);
    await waitAsleep(r.pid);
    const live = liveTable(r.pid);
    expect(live.get(3)!.tfds[0]).toMatch(/^5 events: 19 data: 5 /);
    expect(live.get(5)!.tfds[0]).toMatch(/^7 events: 19 data: 7 /);
  });

  test('an epoll cycle in an image is an error naming the stuck fd', async () => {
    const a = fileOf('eventpoll', 'anon_inode:[eventpoll]', O.RDWR, 0, { type: 'eventpoll', targets: [] });
    const b = fileOf('eventpoll', 'anon_inode:[eventpoll]', O.RDWR, 0, {
      type: 'eventpoll',
      targets: [{ tfd: 3, events: 1, data: 0n, ino: 0, file: a.objref }],
    });
    a.data = { type: 'eventpoll', targets: [{ tfd: 4, events: 1, data: 0n, ino: 0, file: b.objref }] };
    const cp = checkpointOf([
      { fd: 3, file: a },
      { fd: 4, file: b },
    ]);
    await expect(restore(cp, ['sleep', '60'], { stdio: 'ignore' })).rejects.toThrow(
      'fd 3 (anon_inode:[eventpoll]): depends on files that cannot be placed first (a cycle?)',
    );
  });

  test('a pipe holding more than its default 64 KiB is refilled whole', async () => {
    const big = 'x'.repeat(100_000) + 'END';
    const r0 = pipeEnd(9101, 'read', 0, big);
    const cp = checkpointOf([{ fd: 0, file: r0 }]);
    const script = `
data = b''
while len(data) < ${big.length}:
    data += os.read(0, 65536)
report({'n': len(data), 'tail': data[-3:].decode()})
`;
    expect(await runChecker(cp, script, true)).toEqual({ n: big.length, tail: 'END' });
  });

  test('--pid picks one process of a multi-process image', async () => {
    const d = tmpdir();
    const f = path.join(d, 'x');
    fs.writeFileSync(f, 'abc');
    const cp = checkpointOf([
      { fd: 4, file: fileOf('regular', f, O.RDONLY, 1, { type: 'regular', size: 3 }) },
    ]);
    const second = fileOf('regular', f, O.RDONLY, 2, { type: 'regular', size: 3 });
    cp.files.push(second);
    cp.tables.push({ objref: 2000, fds: [{ fd: 6, file: second.objref, cloexec: false }] });
    cp.processes.push({ pid: 2, tgid: 2, comm: 'two', argv: [], cwd: '/', table: 2000 });
    const r = await restore(cp, ['sleep', '60'], { stdio: 'ignore', pid: 2 });
    started.push(r);
    await waitAsleep(r.pid);
    const live = liveTable(r.pid);
    expect([...live.keys()]).toEqual([6]);
    expect(live.get(6)!.pos).toBe(2);
    await expect(restore(cp, ['sleep', '60'], { pid: 3 })).rejects.toThrow('the image holds no process 3');
  });

  test('the program writes through restored regular, fifo and directory fds', async () => {
    const d = tmpdir();
    const log = path.join(d, 'app.log');
    fs.writeFileSync(log, 'one\n');
    const fifo = path.join(d, 'f');
    execFileSync('mkfifo', [fifo]);
    const cp = checkpointOf([
      { fd: 3, file: fileOf('regular', log, O.WRONLY | O.APPEND, 0, { type: 'regular', size: 4 }) },
      { fd: 4, file: fileOf('fifo', fifo, O.RDONLY | O.NONBLOCK, 0, { type: 'fifo' }) },
      { fd: 5, file: fileOf('fifo', fifo, O.WRONLY, 0, { type: 'fifo' }) },
      { fd: 6, file: fileOf('directory', d, O.RDONLY | O.DIRECTORY, 0, { type: 'directory' }) },
    ]);
    const script = `
os.write(3, b'two\\n')
os.write(5, b'via fifo')
got = os.read(4, 100)
names = sorted(os.listdir(6))
report({'fifo': got.decode(), 'names': names})
`;
    expect(await runChecker(cp, script, true)).toEqual({
      fifo: 'via fifo',
      names: ['app.log', 'f'],
    });
    expect(fs.readFileSync(log, 'utf8')).toBe('one\ntwo\n');
  });
});
