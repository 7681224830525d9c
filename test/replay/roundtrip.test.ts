/**
 * Round trips (zdtm style): a real process sets up fds, we capture it, restore
 * its table into a fresh process, capture that, and the two tables must be the
 * same in fd numbers, flags, offsets, cloexec bits, sharing and type state.
 */
import { describe, expect, test } from '@jest/globals';
import { capture } from '../../src/agent/capture/index.js';
import { diffCheckpoints } from '../../src/agent/image/index.js';
import { fdOf } from '../support/fixture.js';
import { useFixtures } from '../support/use-fixtures.js';
import { tableView } from './normalize.js';
import { runRestoredPython, trackRestored, restoreAndRecapture } from './support.js';

const started = trackRestored();
const fixture = useFixtures({ FDPROC_MANY: '300' });

describe.each([true, false])('round trip (batched: %s)', (batch) => {
  test.each([
    ['files'],
    ['pipes'],
    ['fifo'],
    ['eventfd'],
    ['epoll'],
    ['many'],
    ['files', 'pipes', 'fifo', 'eventfd', 'epoll'],
  ])('scenario %s: capture → restore → capture shows no difference', async (...scenarios: string[]) => {
    const fx = await fixture(...scenarios);
    const before = capture([fx.pid]);
    expect(before.problems).toEqual([]);
    const { pid, after } = await restoreAndRecapture(before.checkpoint, started, batch);
    expect(diffCheckpoints(before.checkpoint, after.checkpoint)).toEqual([]);
    // Beyond what diff compares: type state (pipe bytes, eventfd counts, epoll registrations).
    expect(tableView(after.checkpoint, pid)).toEqual(tableView(before.checkpoint, fx.pid));
  });
});

describe('round trip: the restored program uses its fds', () => {
  test('reads buffered pipe bytes, writes through restored ends, and dup-shared offsets stay shared', async () => {
    const fx = await fixture('files', 'pipes', 'eventfd');
    const cp = capture([fx.pid]).checkpoint;
    const [a, dup, pr, pw, ev] = ['a', 'cloexec_dup', 'pipe_r', 'pipe_w', 'eventfd'].map((n) => fdOf(fx, n));
    const script = [
      'import os, sys, json',
      `a, dup, pr, pw, ev = ${a}, ${dup}, ${pr}, ${pw}, ${ev}`,
      'got = os.read(pr, 11)',
      "os.write(pw, b'again')",
      'again = os.read(pr, 5)',
      'before = os.lseek(dup, 0, os.SEEK_CUR)',
      'chunk = os.read(a, 3)',
      'after = os.lseek(dup, 0, os.SEEK_CUR)',
      "count = int.from_bytes(os.read(ev, 8), 'little')",
      "json.dump({'got': got.decode(), 'again': again.decode(), 'before': before, 'chunk': chunk.decode(), 'after': after, 'count': count}, open(sys.argv[1], 'w'))",
    ];
    expect(await runRestoredPython(cp, script, fx.dir, started)).toEqual({
      got: 'hello, pipe',
      again: 'again',
      before: 17,
      chunk: '789',
      after: 20,
      count: 42,
    });
  });
});
