/**
 * Issue 14: the check that each fd opened by path holds the file validation saw runs
 * in the target: a plan step fstat's the fd once it is at its final number (after the
 * dup3 and close of a temporary fd too), into a stat area of the injected mapping that
 * the agent reads back in one read. A table of files on several file systems (tmp,
 * /dev/shm, /proc, a device), with dups, gaps, a fifo, a directory and a memfd large
 * enough to be written between two segments of steps, restores with every file
 * checked (InjectStats.checked), batched and unbatched; and a file swapped after the
 * segment break is still caught, naming its fd. Real processes.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { O, type Checkpoint, type FileRecord } from '../../src/agent/model.js';
import { ReplayError, restore } from '../../src/agent/replay/index.js';
import { checkpointOf, fileOf, trackRestored, waitAsleep } from './support.js';

const started = trackRestored();
let dir: string;
let shm: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdckpt-verify-'));
  shm = fs.mkdtempSync('/dev/shm/fdckpt-verify-');
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(shm, { recursive: true, force: true });
});

/** A by-path record of `p` with the device, inode and mode capture would have seen. */
function byPath(type: 'regular' | 'directory' | 'fifo', p: string, flags: number, pos = 0): FileRecord {
  const st = fs.statSync(p);
  const data =
    type === 'regular'
      ? { type, size: st.size }
      : type === 'directory'
        ? { type }
        : { type: 'fifo' as const };
  return { ...fileOf(type, p, flags, pos, data), dev: st.dev, ino: st.ino, mode: st.mode };
}

/** A memfd whose contents are over the plan's limit: the agent writes them between two segments. */
function bigMemfd(): FileRecord {
  const contents = Buffer.alloc(256 * 1024, 7);
  return fileOf('memfd', '/memfd:big (deleted)', O.RDWR, 0, {
    type: 'memfd',
    name: 'big',
    size: contents.length,
    seals: 0,
    contents,
  });
}

interface Table {
  cp: Checkpoint;
  /** fd → the path it must hold after the restore. */
  expected: Map<number, string>;
  /** Number of open files restored by path (each checked once, whatever its dups). */
  byPathFiles: number;
  /** A regular file whose fd comes after the memfd (opened in the second segment). */
  late: { fd: number; path: string };
}

function table(files: number): Table {
  const entries: { fd: number; file: FileRecord; cloexec?: boolean }[] = [];
  const expected = new Map<number, string>();
  const put = (fd: number, file: FileRecord, cloexec = false): void => {
    entries.push({ fd, file, cloexec });
    expected.set(fd, file.path);
  };
  let fd = 3;
  let byPathFiles = 0;
  const half = Math.floor(files / 2);
  let late = { fd: -1, path: '' };
  for (let i = 0; i < files; i++) {
    const where = i % 7 === 3 ? shm : dir;
    const p = path.join(where, `f${i}`);
    fs.writeFileSync(p, 'y'.repeat(i % 50));
    const file = byPath('regular', p, i % 2 === 0 ? O.RDONLY : O.RDWR, i % 50);
    put(fd, file, i % 3 === 0);
    byPathFiles++;
    if (i === half + 5) late = { fd, path: p };
    // A dup further on; a gap now and then, so that the open lands on a temporary fd
    // that is moved (dup3) and closed: the fstat must be of the final fd.
    if (i % 5 === 0) put(fd + 1, file, true);
    fd += i % 5 === 0 ? 2 : 1;
    if (i % 11 === 0) fd += 3;
    if (i === half) put(fd++, bigMemfd());
  }
  const fifo = path.join(dir, 'fifo');
  if (!fs.existsSync(fifo)) spawnSync('mkfifo', [fifo]);
  put(fd++, byPath('fifo', fifo, O.RDONLY | O.NONBLOCK));
  put(fd++, byPath('directory', dir, O.RDONLY | O.DIRECTORY));
  put(fd++, byPath('directory', '/proc', O.RDONLY | O.DIRECTORY));
  put(fd++, byPath('regular', '/dev/null', O.WRONLY));
  byPathFiles += 4;
  return { cp: checkpointOf(entries), expected, byPathFiles, late };
}

describe.each([true, false])('by-path fds checked by the target itself (batched: %s)', (batch) => {
  test('every file opened by path is fstat-ed in the target and compared', async () => {
    const t = table(300);
    const r = await restore(t.cp, ['sleep', '60'], { stdio: 'ignore', batch });
    started.push(r);
    expect(r.plan.fills).toHaveLength(1);
    expect(r.stats.checked).toBe(t.byPathFiles);
    await waitAsleep(r.pid);
    for (const [fd, p] of t.expected) {
      const link = fs.readlinkSync(`/proc/${r.pid}/fd/${fd}`);
      expect({ fd, link: link.startsWith('/memfd:') ? '/memfd:big (deleted)' : link }).toEqual({
        fd,
        link: p,
      });
    }
  });

  test('a file swapped in the segment after a fill is refused, naming its fd', async () => {
    const t = table(120);
    const other = path.join(dir, 'other');
    fs.writeFileSync(other, 'other');
    const o = fs.statSync(other);
    const before = fs.statSync(t.late.path);
    const swap = (): void => {
      fs.renameSync(t.late.path, `${t.late.path}.old`); // kept, so that its inode is not reused
      fs.renameSync(other, t.late.path);
    };
    let err: unknown;
    try {
      started.push(await restore(t.cp, ['sleep', '60'], { stdio: 'ignore', batch, beforeInject: swap }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ReplayError);
    expect((err as ReplayError).message).toBe(
      `fd ${t.late.fd} (${t.late.path}): opened another file than was checked (dev:ino ${o.dev}:${o.ino}, checked ${before.dev}:${before.ino}): the path changed during restore`,
    );
    expect(fs.existsSync(`/proc/${(err as ReplayError).targetPid}`)).toBe(false);
    fs.renameSync(`${t.late.path}.old`, t.late.path);
  });
});
