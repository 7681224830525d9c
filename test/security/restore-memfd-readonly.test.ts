/**
 * Issue 12 item 23 (second half): a read-only fd on a memfd (reopened O_RDONLY
 * through /proc, as a program hands a read-only view to a helper) came back
 * read-write: the restored program could write what it could only read.
 */
import { afterEach, expect, test } from '@jest/globals';
import { readFileSync, readlinkSync } from 'node:fs';
import { capture } from '../../src/agent/capture/index.js';
import { restore } from '../../src/agent/replay/index.js';
import { O } from '../../src/agent/model.js';
import { killAll, startPython, type Started } from '../support/cgtest.js';
import { trackRestored } from '../replay/support.js';

const started: Started[] = [];
afterEach(async () => {
  await killAll(started);
});
const restored = trackRestored();

function flagsOf(pid: number, fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
  return parseInt(m![1]!, 8);
}

test('a read-only memfd fd is restored read-only, with its contents and offset', async () => {
  const p = await startPython(
    [
      'import os, time',
      "m = os.memfd_create('fdckpt-ro', 0)",
      "os.write(m, b'read me only')",
      "ro = os.open(f'/proc/self/fd/{m}', os.O_RDONLY)",
      'os.close(m)',
      'os.lseek(ro, 5, os.SEEK_SET)',
      "ready({'ro': ro})",
      'time.sleep(3600)',
    ].join('\n') + '\n',
  );
  started.push(p);
  const ro = (JSON.parse(p.ready) as { ro: number }).ro;
  expect(flagsOf(p.pid, ro) & O.ACCMODE).toBe(O.RDONLY);
  const { checkpoint, problems } = capture([p.pid]);
  expect(problems).toEqual([]);
  const r = await restore(checkpoint, ['sleep', '60'], { stdio: 'ignore' });
  restored.push(r);
  await new Promise((res) => setTimeout(res, 200));
  expect(readlinkSync(`/proc/${r.pid}/fd/${ro}`)).toBe('/memfd:fdckpt-ro (deleted)');
  expect(flagsOf(r.pid, ro) & O.ACCMODE).toBe(O.RDONLY);
  expect(readFileSync(`/proc/${r.pid}/fdinfo/${ro}`, 'utf8')).toMatch(/^pos:\s+5$/m);
  expect(readFileSync(`/proc/${r.pid}/fd/${ro}`, 'utf8')).toBe('read me only');
});
