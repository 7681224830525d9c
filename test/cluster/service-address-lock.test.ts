/**
 * One service-address cluster per machine (10.0.0.1:443): a second waits for the first to
 * stop instead of failing on the port, and a holder that dies lets the next one go.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { holdServiceAddress } from '../../src/local/node/network.js';

describe('the service-address lock', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'fdckpt-salock-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a second holder waits until the first releases', async () => {
    const lock = join(dir, 'a.lock');
    const release = await holdServiceAddress(5_000, lock);
    let second: (() => void) | undefined;
    const waiting = holdServiceAddress(20_000, lock).then((r) => (second = r));
    await new Promise((r) => setTimeout(r, 1_500));
    expect(second).toBeUndefined();
    release();
    await waiting;
    expect(second).toBeDefined();
    second!();
  });

  it('gives up after its timeout, saying who holds what', async () => {
    const lock = join(dir, 'b.lock');
    const release = await holdServiceAddress(5_000, lock);
    await expect(holdServiceAddress(1_000, lock)).rejects.toThrow(
      `another cluster on 10.0.0.1 held ${lock} for 1 s`,
    );
    release();
  });

  it('a holder process that dies releases the lock', async () => {
    const lock = join(dir, 'c.lock');
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const { spawn } = require('node:child_process');
         spawn('flock', ['-x', ${JSON.stringify(lock)}, 'sh', '-c', 'echo held; exec cat'], { stdio: ['pipe', 'inherit', 'inherit'] });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((r) => child.stdout.once('data', () => r()));
    child.kill('SIGKILL');
    const release = await holdServiceAddress(10_000, lock);
    release();
  });
});
