import { afterEach, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { O } from '../../src/agent/model.js';
import {
  ReplayError,
  ReplayRefusals,
  parsePolicy,
  refusalsOf,
  restore,
} from '../../src/agent/replay/index.js';
import { checkpointOf, fileOf, liveTable, waitAsleep, trackRestored } from './support.js';

const started = trackRestored();
const dirs: string[] = [];

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmpdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'replay-'));
  dirs.push(d);
  return d;
}

async function restoreError(...args: Parameters<typeof restore>): Promise<ReplayError> {
  try {
    const r = await restore(...args);
    started.push(r);
  } catch (err) {
    expect(err).toBeInstanceOf(ReplayError);
    return err as ReplayError;
  }
  throw new Error('restore succeeded but should have failed');
}

const socket = fileOf('socket', 'socket:[4242]', O.RDWR, 0, {
  type: 'socket',
  family: 1,
  sockType: 1,
  protocol: 0,
  state: 'connected',
  sockIno: 4242,
});

describe('restore failures are precise and leave no process', () => {
  test('a missing file names the fd and ENOENT, before the target program exists', async () => {
    const gone = path.join(tmpdir(), 'app.log');
    const cp = checkpointOf([
      { fd: 7, file: fileOf('regular', gone, O.WRONLY, 0, { type: 'regular', size: 0 }) },
    ]);
    const err = await restoreError(cp, ['sleep', '60'], { stdio: 'ignore' });
    expect(err.message).toBe(`fd 7 (${gone}): ENOENT`);
    expect(err.targetPid).toBeUndefined();
  });

  test('every refused fd is named in one pass, before the target program exists', async () => {
    const d = tmpdir();
    const short = path.join(d, 'short');
    fs.writeFileSync(short, '12');
    const gone = path.join(d, 'gone.log');
    const cp = checkpointOf([
      { fd: 5, file: socket },
      { fd: 7, file: fileOf('regular', gone, O.WRONLY, 0, { type: 'regular', size: 0 }) },
      { fd: 9, file: fileOf('regular', short, O.RDONLY, 100, { type: 'regular', size: 200 }) },
    ]);
    const err = await restoreError(cp, ['sleep', '60'], { stdio: 'ignore' });
    expect(err).toBeInstanceOf(ReplayRefusals);
    expect(refusalsOf(err).map((e) => e.fd)).toEqual([5, 7, 9]);
    expect(err.message).toMatch(
      /^3 fds cannot be restored: fd 5 \(socket:\[4242\]\): .*; fd 7 \(.*gone\.log\): ENOENT; fd 9 \(.*short\): file is 2 bytes/,
    );
    // The first one still answers as a single ReplayError does.
    expect([err.fd, err.path]).toEqual([5, 'socket:[4242]']);
    expect(err.targetPid).toBeUndefined();
  });

  test('a file truncated below the saved offset fails unless the policy allows a size change', async () => {
    const f = path.join(tmpdir(), 'data');
    fs.writeFileSync(f, '12345');
    const cp = checkpointOf([
      { fd: 4, file: fileOf('regular', f, O.RDONLY, 100, { type: 'regular', size: 200 }) },
    ]);
    const err = await restoreError(cp, ['sleep', '60'], { stdio: 'ignore' });
    expect(err.message).toBe(
      `fd 4 (${f}): file is 5 bytes, shorter than the saved offset 100 (policy allowSizeChange accepts it)`,
    );
    const policy = parsePolicy(
      JSON.stringify({ rules: [{ path: `${path.dirname(f)}/*`, allowSizeChange: true }] }),
    );
    const r = await restore(cp, ['sleep', '60'], { stdio: 'ignore', policy });
    started.push(r);
    await waitAsleep(r.pid);
    expect(liveTable(r.pid).get(4)!.pos).toBe(100);
  });

  test('a type with no restore fails; skip and devnull policies replace it', async () => {
    const cp = checkpointOf([{ fd: 5, file: socket }]);
    const err = await restoreError(cp, ['sleep', '60'], { stdio: 'ignore' });
    expect(err.message).toBe(
      'fd 5 (socket:[4242]): only listening TCP and unix sockets and unix socketpairs can be restored, this one is connected (policy skip or devnull can replace it)',
    );

    const skip = await restore(cp, ['sleep', '60'], {
      stdio: 'ignore',
      policy: parsePolicy('rules: [{fd: 5, action: skip}]'),
    });
    started.push(skip);
    await waitAsleep(skip.pid);
    expect([...liveTable(skip.pid).keys()]).toEqual([]);

    const devnull = parsePolicy('rules: [{type: socket, action: devnull}]');
    const dn = await restore(cp, ['sleep', '60'], { stdio: 'ignore', policy: devnull });
    started.push(dn);
    await waitAsleep(dn.pid);
    const live = liveTable(dn.pid);
    expect(live.get(5)!.link).toBe('/dev/null');
    expect(live.get(5)!.flags & O.ACCMODE).toBe(O.RDWR);
  });

  test('files marked ignored in the image are left closed', async () => {
    const ignored = { ...socket, objref: 777, ignored: { reason: 'type' as const } };
    const f = path.join(tmpdir(), 'kept');
    fs.writeFileSync(f, '');
    const cp = checkpointOf([
      { fd: 3, file: ignored },
      { fd: 4, file: fileOf('regular', f, O.RDONLY, 0, { type: 'regular', size: 0 }) },
    ]);
    const r = await restore(cp, ['sleep', '60'], { stdio: 'ignore' });
    started.push(r);
    await waitAsleep(r.pid);
    expect([...liveTable(r.pid).keys()]).toEqual([4]);
  });

  test('remap opens the file under its new prefix', async () => {
    const d = tmpdir();
    fs.mkdirSync(path.join(d, 'new'));
    fs.writeFileSync(path.join(d, 'new', 'x'), 'abcdef');
    const cp = checkpointOf([
      { fd: 3, file: fileOf('regular', path.join(d, 'old', 'x'), O.RDONLY, 2, { type: 'regular', size: 6 }) },
    ]);
    const policy = parsePolicy(
      JSON.stringify({ rules: [{ action: 'remap', from: `${d}/old`, to: `${d}/new` }] }),
    );
    const r = await restore(cp, ['sleep', '60'], { stdio: 'ignore', policy });
    started.push(r);
    await waitAsleep(r.pid);
    const live = liveTable(r.pid);
    expect(live.get(3)!.link).toBe(path.join(d, 'new', 'x'));
    expect(live.get(3)!.pos).toBe(2);
  });

  test('creation-only flags in the image are refused', async () => {
    const f = path.join(tmpdir(), 'c');
    fs.writeFileSync(f, '');
    const cp = checkpointOf([
      { fd: 3, file: fileOf('regular', f, O.WRONLY | O.TRUNC, 0, { type: 'regular', size: 0 }) },
    ]);
    const err = await restoreError(cp, ['sleep', '60'], { stdio: 'ignore' });
    expect(err.message).toMatch(/^fd 3 \(.*\): saved flags 0o1001 carry O_CREAT\/O_EXCL\/O_NOCTTY\/O_TRUNC$/);
  });

  test('an fd above the fd limit the target will have is refused before it starts', async () => {
    const f = path.join(tmpdir(), 'ok');
    fs.writeFileSync(f, 'x');
    const cp = checkpointOf([
      { fd: 1 << 20, file: fileOf('regular', f, O.RDONLY, 0, { type: 'regular', size: 1 }) },
    ]);
    const err = await restoreError(cp, ['sleep', '60'], { stdio: 'ignore' });
    expect(err.message).toMatch(
      new RegExp(`^fd ${1 << 20} \\(${f}\\): at or above the target's RLIMIT_NOFILE \\(\\d+\\)$`),
    );
  });

  test('a failure inside the target kills it and names the fd and errno', async () => {
    const f = path.join(tmpdir(), 'ok');
    fs.writeFileSync(f, 'x');
    // A malformed image (O_DIRECTORY on a regular file) that only the target's openat finds out.
    const cp = checkpointOf([
      { fd: 0, file: fileOf('regular', f, O.RDONLY, 0, { type: 'regular', size: 1 }) },
      { fd: 5, file: fileOf('regular', f, O.RDONLY | O.DIRECTORY, 0, { type: 'regular', size: 1 }) },
    ]);
    const err = await restoreError(cp, ['sleep', '60'], { stdio: 'ignore' });
    expect(err.message).toBe(`fd 5 (${f}): ENOTDIR (openat in the target)`);
    expect(err.targetPid).toBeGreaterThan(0);
    expect(fs.existsSync(`/proc/${err.targetPid}`)).toBe(false);
  });

  test('the same failure in unbatched mode is reported the same way', async () => {
    const f = path.join(tmpdir(), 'ok');
    fs.writeFileSync(f, 'x');
    const cp = checkpointOf([
      { fd: 3, file: fileOf('regular', f, O.RDONLY | O.DIRECTORY, 0, { type: 'regular', size: 1 }) },
    ]);
    const err = await restoreError(cp, ['sleep', '60'], { stdio: 'ignore', batch: false });
    expect(err.message).toBe(`fd 3 (${f}): ENOTDIR (openat in the target)`);
    expect(fs.existsSync(`/proc/${err.targetPid}`)).toBe(false);
  });

  test('a command that cannot be executed is an error, and nothing is left running', async () => {
    const cp = checkpointOf([]);
    await expect(restore(cp, ['/nonexistent/program'], { stdio: 'ignore' })).rejects.toThrow(
      /^target pid \d+ exited with 127 before exec/,
    );
  });

  test('a bad policy is a precise error', () => {
    expect(() => parsePolicy('rules: [{fd: 3, action: explode}]')).toThrow(
      'policy rule 1: action must be one of fail, skip, devnull, remap, inherit, got "explode"',
    );
    expect(() => parsePolicy('rules: [{action: remap, from: relative, to: /x}]')).toThrow(
      'policy rule 1: remap needs `from`, an absolute path prefix',
    );
    expect(() => parsePolicy('rules: [{fd: -1}]')).toThrow('policy rule 1: fd must be an integer ≥ 0');
    expect(() => parsePolicy('rules: [{type: sock}]')).toThrow('policy rule 1: unknown type "sock"');
    expect(() => parsePolicy('nope: 1')).toThrow('policy file: must be an object with a `rules` list');
  });
});
