/**
 * Issue 12, item 13: restoring an image while the original unix-socket server
 * still runs unlinked its live socket path (and bound a new socket there).
 * Only a stale socket file, one nobody listens on (connect: ECONNREFUSED),
 * is removed; a live one fails the restore before the target runs, naming
 * the fd, and the original keeps its address. A real fixture process.
 */
import { describe, expect, it } from '@jest/globals';
import { statSync } from 'node:fs';
import { connect } from 'node:net';
import { capture } from '../../src/agent/capture/index.js';
import { restore } from '../../src/agent/replay/index.js';
import type { RestorePolicy } from '../../src/agent/replay/index.js';
import { fdOf } from '../support/fixture.js';
import { useFixtures } from '../support/use-fixtures.js';
import { trackRestored } from '../replay/support.js';

const started = trackRestored();
const fixture = useFixtures();

function connects(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('a unix socket path at restore', () => {
  it('a live server’s socket is not unlinked: the restore fails naming the fd, the server keeps its address', async () => {
    const fx = await fixture('listeners');
    const cp = capture([fx.pid]).checkpoint;
    const fd = fdOf(fx, 'unix');
    const path = String(fx.info['unix_path']);
    const ino = statSync(path).ino;
    // Only the unix socket: the TCP ports are still the fixture's too.
    const policy: RestorePolicy = { rules: [{ fd, action: 'fail' }, { action: 'skip' }] };
    const attempt = restore(cp, ['sleep', '60'], { stdio: 'ignore', policy });
    await expect(attempt).rejects.toThrow(
      `fd ${fd} (${path}): a server is listening on this unix socket: only a stale socket file is removed`,
    );
    // Before the fix the restore succeeded: keep its process to be killed.
    await attempt.then(
      (r) => started.push(r),
      () => undefined,
    );
    expect(statSync(path).ino).toBe(ino);
    expect(await connects(path)).toBe(true);
  });

  it('a stale socket file (its server gone) is still replaced', async () => {
    const fx = await fixture('listeners');
    const cp = capture([fx.pid]).checkpoint;
    const fd = fdOf(fx, 'unix');
    const path = String(fx.info['unix_path']);
    const exited = new Promise((resolve) => fx.child.once('exit', resolve));
    process.kill(fx.pid, 'SIGKILL');
    await exited;
    expect(await connects(path)).toBe(false); // the file stays, nobody listens
    const policy: RestorePolicy = { rules: [{ fd, action: 'fail' }, { action: 'skip' }] };
    const restored = await restore(cp, ['sleep', '60'], { stdio: 'ignore', policy });
    started.push(restored);
    expect(await connects(path)).toBe(true);
  });
});
