import { afterEach, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { capture } from '../../src/agent/capture/index.js';
import { diffCheckpoints } from '../../src/agent/image/index.js';
import { O, type FileRecord } from '../../src/agent/model.js';
import { restore, waitSettled } from '../../src/agent/replay/index.js';
import { checkpointOf, fileOf, liveTable, waitAsleep, trackRestored } from './support.js';

const started = trackRestored();
let dir = '';

afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function tmpdir(): string {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replay-'));
  return dir;
}

describe('restore of regular files', () => {
  test('fd numbers, flags, offsets, cloexec and sharing come back', async () => {
    const d = tmpdir();
    const a = path.join(d, 'a.txt');
    const b = path.join(d, 'b.log');
    fs.writeFileSync(a, 'hello world, this is a');
    fs.writeFileSync(b, 'log line\n');
    const fa = fileOf('regular', a, O.RDONLY, 6, { type: 'regular', size: 22 });
    const fb = fileOf('regular', b, O.WRONLY | O.APPEND, 9, { type: 'regular', size: 9 });
    const fdir = fileOf('directory', d, O.RDONLY | O.DIRECTORY, 0, { type: 'directory' });
    const cp = checkpointOf([
      { fd: 0, file: fa },
      { fd: 3, file: fb, cloexec: true },
      { fd: 7, file: fa, cloexec: true },
      { fd: 9, file: fdir },
    ]);
    const r = await restore(cp, ['sleep', '60'], { stdio: 'ignore' });
    started.push(r);
    await waitAsleep(r.pid);
    const live = liveTable(r.pid);
    expect([...live.keys()]).toEqual([0, 3, 7, 9]);
    expect(live.get(0)!.link).toBe(a);
    expect(live.get(0)!.pos).toBe(6);
    expect(live.get(7)!.pos).toBe(6);
    expect(live.get(3)!.link).toBe(b);
    expect(live.get(3)!.flags & (O.ACCMODE | O.APPEND | O.CLOEXEC)).toBe(O.WRONLY | O.APPEND | O.CLOEXEC);
    expect(live.get(7)!.flags & O.CLOEXEC).toBe(O.CLOEXEC);
    expect(live.get(0)!.flags & O.CLOEXEC).toBe(0);
    expect(live.get(9)!.link).toBe(d);
  });

  test('5000 fds with holes, dups and mixed flags: the restored table captures as the image', async () => {
    const d = tmpdir();
    const entries: { fd: number; file: FileRecord; cloexec: boolean }[] = [];
    const modes = [O.RDONLY, O.RDWR, O.WRONLY | O.APPEND, O.RDWR | O.NONBLOCK];
    let previous: FileRecord | undefined;
    for (let i = 0; i < 5000; i++) {
      // Holes everywhere (every third number skipped), so most files are created below
      // their fd and moved: the fd-table simulation must predict every number.
      const fd = i + Math.floor(i / 2);
      if (i % 7 === 6 && previous) {
        entries.push({ fd, file: previous, cloexec: i % 2 === 0 });
        continue;
      }
      const p = path.join(d, `f${i}`);
      fs.writeFileSync(p, 'y'.repeat(i % 50));
      previous = fileOf('regular', p, modes[i % 4]! | O.LARGEFILE, i % 50, { type: 'regular', size: i % 50 });
      entries.push({ fd, file: previous, cloexec: i % 3 === 0 });
    }
    const cp = checkpointOf(entries);
    const r = await restore(cp, ['sleep', '60'], { stdio: 'ignore' });
    started.push(r);
    await waitAsleep(r.pid);
    expect(diffCheckpoints(cp, capture([r.pid]).checkpoint)).toEqual([]);
  });

  test('waitSettled returns once the restored program blocks with a stable table', async () => {
    const r = await restore(checkpointOf([]), ['sleep', '60'], { stdio: 'ignore' });
    started.push(r);
    await waitSettled(r.pid);
    expect(fs.readFileSync(`/proc/${r.pid}/wchan`, 'utf8')).toContain('nanosleep');
  });
});
