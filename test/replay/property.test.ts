/**
 * Property: any table of regular files (shared through dups), directories,
 * fifos, pipes (either or
 * both ends, buffered bytes), eventfds and epolls (watching earlier files), at
 * any sparse fd numbers with any cloexec bits, restores exactly — the restored
 * program's captured table equals the image (diffCheckpoints and type state).
 * This exercises the planner's prediction of every fd number the kernel hands out.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { capture } from '../../src/agent/capture/index.js';
import { diffCheckpoints } from '../../src/agent/image/index.js';
import { O, type FileRecord } from '../../src/agent/model.js';
import type { EpollTarget } from '../../src/agent/filetypes/eventpoll.js';
import { restore, waitSettled } from '../../src/agent/replay/index.js';
import { tableView } from './normalize.js';
import { checkpointOf, fileOf } from './support.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replay-prop-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

type Kind = 'regular' | 'directory' | 'fifo' | 'pipe' | 'eventfd' | 'epoll';
interface Spec {
  kind: Kind;
  /** How many fds: for a pipe, read-end and write-end counts. */
  fds: [number, number];
  mode: number;
  nonblock: boolean;
  pos: number;
  bytes: number;
  /** For an epoll: indexes (mod the earlier files) of the files it watches. */
  watch: number[];
}

const spec: fc.Arbitrary<Spec> = fc.record({
  kind: fc.constantFrom<Kind>('regular', 'regular', 'directory', 'fifo', 'pipe', 'eventfd', 'epoll'),
  fds: fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 })),
  mode: fc.constantFrom(O.RDONLY, O.WRONLY, O.RDWR),
  nonblock: fc.boolean(),
  pos: fc.integer({ min: 0, max: 40 }),
  bytes: fc.integer({ min: 0, max: 5 }),
  watch: fc.array(fc.nat(), { maxLength: 3 }),
});

const table = fc.record({
  specs: fc.array(spec, { minLength: 1, maxLength: 10 }),
  // Dense (40 of 0..39: fds land where they are created) to sparse (40 of 0..79).
  fdNumbers: fc.constantFrom(40, 44, 56, 80).chain((span) =>
    fc.shuffledSubarray(
      Array.from({ length: span }, (_, i) => i),
      { minLength: 40, maxLength: 40 },
    ),
  ),
  cloexec: fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }),
  batch: fc.boolean(),
});

let nextIno = 50_000;
let nextFile = 0;

function build(t: {
  specs: Spec[];
  fdNumbers: number[];
  cloexec: boolean[];
}): ReturnType<typeof checkpointOf> {
  const entries: { fd: number; file: FileRecord; cloexec: boolean }[] = [];
  let slot = 0;
  const place = (file: FileRecord, n: number): number[] => {
    const fds: number[] = [];
    for (let i = 0; i < n; i++, slot++) {
      entries.push({ fd: t.fdNumbers[slot]!, file, cloexec: t.cloexec[slot]! });
      fds.push(t.fdNumbers[slot]!);
    }
    return fds;
  };
  /** Files an epoll may watch: pipes, eventfds, other epolls. */
  const watchable: { file: FileRecord; fds: number[] }[] = [];
  for (const s of t.specs) {
    const nb = s.nonblock ? O.NONBLOCK : 0;
    if (s.kind === 'regular') {
      const p = path.join(dir, `f${nextFile++}`);
      fs.writeFileSync(p, 'r'.repeat(40));
      const f = fileOf('regular', p, s.mode | nb | O.LARGEFILE, s.pos, { type: 'regular', size: 40 });
      // Regular files cannot be polled (epoll_ctl says EPERM): not watchable.
      place(f, Math.max(1, s.fds[0]));
    } else if (s.kind === 'directory') {
      const d = path.join(dir, `d${nextFile++}`);
      fs.mkdirSync(d);
      place(
        fileOf('directory', d, O.RDONLY | O.DIRECTORY | O.LARGEFILE, 0, { type: 'directory' }),
        Math.max(1, s.fds[0]),
      );
    } else if (s.kind === 'fifo') {
      const p = path.join(dir, `p${nextFile++}`);
      execFileSync('mkfifo', [p]);
      // Both ends, so that the read end sees a writer as in a real capture.
      place(fileOf('fifo', p, O.RDONLY | nb | O.LARGEFILE, 0, { type: 'fifo' }), Math.max(1, s.fds[0]));
      place(fileOf('fifo', p, O.WRONLY | O.LARGEFILE, 0, { type: 'fifo' }), Math.max(1, s.fds[1]));
    } else if (s.kind === 'pipe') {
      const ino = nextIno++;
      const nr = s.fds[0];
      // Without a read end in the table the bytes are not captured (and nobody could read them).
      const buffered = Buffer.from('b'.repeat(nr > 0 ? s.bytes : 0));
      const nw = nr === 0 && s.fds[1] === 0 ? 1 : s.fds[1];
      const common = { type: 'pipe' as const, pipeIno: ino, bufferedBytes: buffered.length };
      if (nr > 0) {
        const r = fileOf('pipe', `pipe:[${ino}]`, O.RDONLY | nb, 0, {
          ...common,
          end: 'read',
          ...(buffered.length ? { buffered } : {}),
        });
        watchable.push({ file: r, fds: place(r, nr) });
      }
      if (nw > 0) {
        const w = fileOf('pipe', `pipe:[${ino}]`, O.WRONLY, 0, { ...common, end: 'write' });
        place(w, nw);
      }
    } else if (s.kind === 'eventfd') {
      const f = fileOf('eventfd', 'anon_inode:[eventfd]', O.RDWR | nb, 0, {
        type: 'eventfd',
        count: BigInt(s.bytes),
        semaphore: s.nonblock,
      });
      watchable.push({ file: f, fds: place(f, Math.max(1, s.fds[0])) });
    } else {
      const targets: EpollTarget[] = [];
      const seen = new Set<number>();
      for (const w of s.watch) {
        if (watchable.length === 0) break;
        const target = watchable[w % watchable.length]!;
        if (seen.has(target.file.objref)) continue;
        seen.add(target.file.objref);
        targets.push({
          tfd: target.fds[0]!,
          events: 0x19,
          data: BigInt(w),
          ino: 0,
          file: target.file.objref,
        });
      }
      const f = fileOf('eventpoll', 'anon_inode:[eventpoll]', O.RDWR, 0, { type: 'eventpoll', targets });
      watchable.push({ file: f, fds: place(f, Math.max(1, s.fds[0])) });
    }
  }
  return checkpointOf(entries);
}

describe('restore, property-based', () => {
  test('random tables of every restorable type restore exactly', async () => {
    await fc.assert(
      fc.asyncProperty(table, async (t) => {
        const cp = build(t);
        const r = await restore(cp, ['sleep', '60'], { stdio: 'ignore', batch: t.batch });
        try {
          await waitSettled(r.pid);
          const after = capture([r.pid]).checkpoint;
          expect(diffCheckpoints(cp, after)).toEqual([]);
          expect(tableView(after, r.pid)).toEqual(tableView(cp, cp.processes[0]!.pid));
        } finally {
          process.kill(r.pid, 'SIGKILL');
          await r.exit;
        }
      }),
      { numRuns: Number(process.env['FDCKPT_PROPERTY_RUNS'] ?? 25) },
    );
  });
});
