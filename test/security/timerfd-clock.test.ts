/**
 * Issue 12, item 17: the clock of a timerfd is whatever the image says. A
 * clock timerfd_create does not accept is refused when the restore is
 * planned, and the error names the fd (it was a bare `clock_gettime(clock
 * 99): EINVAL` for an absolute timer, and a failure inside the target
 * otherwise).
 */
import { describe, expect, it } from '@jest/globals';
import type { Checkpoint } from '../../src/agent/model.js';
import { DEFAULT_POLICY, ReplayError, planRestore } from '../../src/agent/replay/index.js';

function withTimer(clockid: number, settimeFlags: number): Checkpoint {
  return {
    header: { node: 'n', source: 's', time: 1, kernel: 'k', tool: 't' },
    processes: [{ pid: 10, tgid: 10, comm: 'c', argv: ['c'], cwd: '/', table: 100 }],
    tables: [{ objref: 100, fds: [{ fd: 5, file: 1, cloexec: false }] }],
    files: [
      {
        objref: 1,
        type: 'timerfd',
        flags: 0o2,
        pos: 0,
        path: 'anon_inode:[timerfd]',
        mntId: 1,
        dev: 1,
        ino: 1,
        mode: 0o600,
        data: { type: 'timerfd', clockid, ticks: 0n, settimeFlags, valueNs: 1_000_000_000n, intervalNs: 0n },
      },
    ],
  };
}

function refusal(cp: Checkpoint): ReplayError {
  try {
    planRestore(cp, DEFAULT_POLICY, 10);
  } catch (err) {
    if (err instanceof ReplayError) return err;
    throw err;
  }
  throw new Error('the plan was accepted');
}

describe('a timerfd on a clock timerfd_create does not take', () => {
  it.each([
    ['an absolute timer', 1],
    ['a relative timer', 0],
  ])('%s: refused at plan time, naming the fd', (_, flags) => {
    for (const clock of [99, -1, 2 /* CLOCK_PROCESS_CPUTIME_ID */]) {
      const err = refusal(withTimer(clock, flags));
      expect(err.fd).toBe(5);
      expect(err.message).toBe(
        `fd 5 (anon_inode:[timerfd]): timerfd clock ${clock} is not one timerfd_create accepts (0, 1, 7, 8, 9)`,
      );
    }
  });

  it('the clocks it does take are planned', () => {
    for (const clock of [0, 1, 7]) expect(planRestore(withTimer(clock, 1), DEFAULT_POLICY, 10).fds).toBe(1);
  });
});
