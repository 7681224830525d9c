/**
 * signalfd and timerfd round trips: a real process sets them up (test/fixtures
 * fdproc.py `timers`: flags, three clocks, an absolute timer cancelled on clock
 * change, a fired one-shot with an unread expiration, a disarmed timer, a dup),
 * we capture it, restore into a fresh process, capture that, and compare.
 * A timer's remaining time can only have shrunk; everything else is equal.
 */
import { describe, expect, test } from '@jest/globals';
import { capture } from '../../src/agent/capture/index.js';
import { diffCheckpoints } from '../../src/agent/image/index.js';
import type { Checkpoint, FileData } from '../../src/agent/model.js';
import { fdOf } from '../support/fixture.js';
import { useFixtures } from '../support/use-fixtures.js';
import { fileAtFd, runRestoredPython, trackRestored, restoreAndRecapture } from './support.js';

const started = trackRestored();
const fixture = useFixtures();
const ROLES = ['sig_nb', 'mono', 'mono_dup', 'fired', 'absolute', 'boot'] as const;

function dataOf(cp: Checkpoint, pid: number, fd: number): FileData {
  return fileAtFd(cp, pid, fd).data;
}

describe.each([true, false])('signalfd and timerfd (batched: %s)', (batch) => {
  test('capture → restore → capture: same masks, clocks, flags, intervals and unread expirations', async () => {
    const fx = await fixture('timers');
    const before = capture([fx.pid]);
    // Both types used to be refused as "cannot be restored yet".
    expect(before.problems).toEqual([]);
    const { pid, after } = await restoreAndRecapture(before.checkpoint, started, batch);
    expect(diffCheckpoints(before.checkpoint, after.checkpoint)).toEqual([]);

    for (const role of ROLES) {
      const fd = fdOf(fx, role);
      const was = dataOf(before.checkpoint, fx.pid, fd);
      const now = dataOf(after.checkpoint, pid, fd);
      if (was.type === 'timerfd' && now.type === 'timerfd') {
        const { valueNs: v0, ...rest0 } = was;
        const { valueNs: v1, ...rest1 } = now;
        expect({ role, ...rest1 }).toEqual({ role, ...rest0 });
        // Armed stays armed with no more time left than at capture; disarmed stays disarmed.
        expect({ role, armed: v1 > 0n, notLater: v1 <= v0 }).toEqual({
          role,
          armed: v0 > 0n,
          notLater: true,
        });
      } else {
        expect({ role, ...now }).toEqual({ role, ...was });
      }
    }
    // What the fixture set up, as capture saw it (so the comparison above is not vacuous).
    expect(dataOf(before.checkpoint, fx.pid, fdOf(fx, 'fired'))).toMatchObject({ ticks: 1n, valueNs: 0n });
    expect(dataOf(before.checkpoint, fx.pid, fdOf(fx, 'absolute'))).toMatchObject({
      clockid: 0,
      settimeFlags: 3,
    });
  });
});

test('the restored program reads the unread expiration and sees the signalfd non-blocking', async () => {
  const fx = await fixture('timers');
  const cp = capture([fx.pid]).checkpoint;
  const script = [
    'import os, sys, json',
    `fired, sig_nb = ${fdOf(fx, 'fired')}, ${fdOf(fx, 'sig_nb')}`,
    "ticks = int.from_bytes(os.read(fired, 8), 'little')",
    'try:',
    '    os.read(sig_nb, 128); blocked = False',
    'except BlockingIOError:',
    '    blocked = True',
    "json.dump({'ticks': ticks, 'wouldBlock': blocked, 'cloexec': not os.get_inheritable(sig_nb)}, open(sys.argv[1], 'w'))",
  ];
  expect(await runRestoredPython(cp, script, fx.dir, started)).toEqual({
    ticks: 1,
    wouldBlock: true,
    cloexec: true,
  });
});
