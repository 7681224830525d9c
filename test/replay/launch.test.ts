import { describe, expect, test } from '@jest/globals';
import { launchHeld } from '../../src/agent/replay/launch.js';

describe('fdckpt-hold', () => {
  test('the held process gives up after its timeout with status 125', async () => {
    const held = await launchHeld(['true'], { stdio: 'ignore', timeoutSeconds: 1 });
    expect(held.pid).toBeGreaterThan(0);
    expect(await held.exit).toBe(125);
  });

  test('the waiter reports a held process killed by signal N as 128+N', async () => {
    const held = await launchHeld(['true'], { stdio: 'ignore' });
    process.kill(held.pid, 'SIGKILL');
    expect(await held.exit).toBe(137);
  });

  test('the held process is not a child of this process (libuv must not reap its stops)', async () => {
    const held = await launchHeld(['true'], { stdio: 'ignore' });
    const stat = (await import('node:fs')).readFileSync(`/proc/${held.pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    expect(ppid).toBe(held.waiter.pid);
    expect(ppid).not.toBe(process.pid);
    process.kill(held.pid, 'SIGKILL');
    await held.exit;
  });
});
