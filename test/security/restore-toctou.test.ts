/**
 * Issue 12, item 12 (the gap left open): restore checks each path (not a symlink,
 * the captured device and inode, the file type) and only then does the target
 * open it. A path swapped in that window — a symlink to a root-only file, another
 * file renamed over it — was opened unseen. Now the agent checks, after the opens
 * and before the program runs, that each fd holds the file validation saw; on a
 * mismatch the restore fails naming the fd and the path, and the target is killed.
 * The race is won deterministically with restore()'s test-only beforeInject hook,
 * which runs between validation and the target's opens. Real processes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Checkpoint } from '../../src/agent/model.js';
import { O } from '../../src/agent/model.js';
import { ReplayError, parsePolicy, restore, type Restored } from '../../src/agent/replay/index.js';
import type { RestorePolicy } from '../../src/agent/replay/index.js';
import { trackRestored, waitAsleep } from '../replay/support.js';

const started = trackRestored();
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fdckpt-sec-toctou-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An image of one process with `path` open at fd 7 (a directory when `dir`), as capture saw it. */
function imageOf(path: string, type: 'regular' | 'directory' = 'regular'): Checkpoint {
  const st = statSync(path);
  const flags = type === 'directory' ? O.RDONLY | O.DIRECTORY : O.RDONLY;
  return {
    header: { node: 'n', source: 's', time: 1, kernel: 'k', tool: 't' },
    processes: [{ pid: 10, tgid: 10, comm: 'c', argv: ['c'], cwd: '/', table: 100 }],
    tables: [{ objref: 100, fds: [{ fd: 7, file: 1, cloexec: false }] }],
    files: [
      {
        objref: 1,
        type,
        flags,
        pos: 0,
        path,
        mntId: 1,
        dev: st.dev,
        ino: st.ino,
        mode: st.mode,
        data: type === 'directory' ? { type: 'directory' } : { type: 'regular', size: st.size },
      },
    ],
  };
}

/** Restores `cp` into `sleep 60`, running `swap` inside the window; the error it fails with. */
async function refusedWith(
  cp: Checkpoint,
  swap: () => void,
  policy?: RestorePolicy,
  batch = true,
): Promise<ReplayError> {
  let r: Restored;
  try {
    r = await restore(cp, ['sleep', '60'], { stdio: 'ignore', beforeInject: swap, pid: 10, policy, batch });
  } catch (err) {
    if (err instanceof ReplayError) return err;
    throw err;
  }
  started.push(r);
  await waitAsleep(r.pid);
  throw new Error(`the restore succeeded: fd 7 of pid ${r.pid} is ${readlinkSync(`/proc/${r.pid}/fd/7`)}`);
}

describe('a path swapped between validation and the open is refused', () => {
  it('a symlink to another file swapped in: fails naming fd and path, no restored process', async () => {
    const victim = join(dir, 'root-only');
    writeFileSync(victim, 'secret\n', { mode: 0o600 });
    const log = join(dir, 'app.log');
    writeFileSync(log, 'log\n');
    const before = statSync(log);
    const v = statSync(victim);
    const err = await refusedWith(imageOf(log), () => {
      rmSync(log);
      symlinkSync(victim, log);
    });
    expect(err.message).toBe(
      `fd 7 (${log}): opened another file than was checked (dev:ino ${v.dev}:${v.ino}, checked ${before.dev}:${before.ino}): the path changed during restore`,
    );
    expect(err.fd).toBe(7);
    expect(err.targetPid).toBeGreaterThan(0);
    expect(existsSync(`/proc/${err.targetPid}`)).toBe(false);
  });

  it('another file renamed over the path is refused, even under allowFileChange', async () => {
    const data = join(dir, 'data');
    writeFileSync(data, 'first');
    const before = statSync(data);
    const other = join(dir, 'other');
    writeFileSync(other, 'second');
    const o = statSync(other);
    const swap = (): void => {
      renameSync(data, `${data}.old`); // kept, so that its inode is not reused
      renameSync(other, data);
    };
    // allowFileChange accepts another file than at capture, not another than was checked.
    const allow = parsePolicy(JSON.stringify({ rules: [{ path: `${dir}/*`, allowFileChange: true }] }));
    // Unbatched (one ptrace round trip per step) runs the same check.
    const err = await refusedWith(imageOf(data), swap, allow, false);
    expect(err.message).toBe(
      `fd 7 (${data}): opened another file than was checked (dev:ino ${o.dev}:${o.ino}, checked ${before.dev}:${before.ino}): the path changed during restore`,
    );
    expect(existsSync(`/proc/${err.targetPid}`)).toBe(false);
  });

  it('a directory swapped for a symlink to another directory is refused', async () => {
    const d = join(dir, 'dir');
    mkdirSync(d);
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    const before = statSync(d);
    const e = statSync(elsewhere);
    const err = await refusedWith(imageOf(d, 'directory'), () => {
      rmSync(d, { recursive: true });
      symlinkSync(elsewhere, d);
    });
    expect(err.message).toBe(
      `fd 7 (${d}): opened another file than was checked (dev:ino ${e.dev}:${e.ino}, checked ${before.dev}:${before.ino}): the path changed during restore`,
    );
    expect(existsSync(`/proc/${err.targetPid}`)).toBe(false);
  });

  it('an unchanged path is restored (the check costs one stat per file)', async () => {
    const f = join(dir, 'same');
    writeFileSync(f, 'x');
    const r = await restore(imageOf(f), ['sleep', '60'], { stdio: 'ignore', beforeInject: () => undefined });
    started.push(r);
    await waitAsleep(r.pid);
    expect(readlinkSync(`/proc/${r.pid}/fd/7`)).toBe(f);
    expect(r.stats.verifyMs).toBeGreaterThanOrEqual(0);
  });
});
