/**
 * inotify round trips: a real process (test/fixtures/fdproc.py `inotify`) watches a
 * directory and two files at wds 1, 3 and 5 (2 and 4 removed), on a non-blocking,
 * close-on-exec instance. We capture it, restore into a fresh process, and compare the
 * watches as its fdinfo shows them; the restored program gets an event with the original
 * wd, and none of the ids restore burnt. A watched file deleted before the restore makes
 * it refuse, naming the fd and the wd, before any program runs.
 */
import fs from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { capture } from '../../src/agent/capture/index.js';
import { decodeCheckpoint, diffCheckpoints, encodeCheckpoint } from '../../src/agent/image/index.js';
import { DEFAULT_POLICY, planRestore, restore, ReplayError } from '../../src/agent/replay/index.js';
import { O, type Checkpoint } from '../../src/agent/model.js';
import type { InotifyWatch } from '../../src/agent/filetypes/inotify.js';
import { main } from '../../src/cli/main.js';
import { fdOf } from '../support/fixture.js';
import { useFixtures } from '../support/use-fixtures.js';
import {
  checkpointOf,
  fileAtFd,
  fileOf,
  runRestoredPython,
  trackRestored,
  restoreAndRecapture,
} from './support.js';

const started = trackRestored();

/** Runs the CLI in-process (as cli.test.ts does) and returns its exit code and output. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const [out, err] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
  process.stdout.write = (chunk: string | Uint8Array) => ((stdout += String(chunk)), true);
  process.stderr.write = (chunk: string | Uint8Array) => ((stderr += String(chunk)), true);
  try {
    return { code: await main(args), stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}
const fixture = useFixtures();

/** The `inotify wd:` lines of an fd as fdinfo prints them: wd, ino, mask (hex, as printed). */
function watchLines(pid: number, fd: number): { wd: string; ino: string; sdev: string; mask: string }[] {
  const text = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
  return [...text.matchAll(/^inotify wd:(\S+) ino:(\S+) sdev:(\S+) mask:(\S+)/gm)]
    .map(([, wd, ino, sdev, mask]) => ({ wd: wd!, ino: ino!, sdev: sdev!, mask: mask! }))
    .sort((a, b) => parseInt(a.wd, 16) - parseInt(b.wd, 16));
}

describe.each([true, false])('inotify (batched: %s)', (batch) => {
  test('capture → restore → capture: the same watches at the same wds, the same flags', async () => {
    const fx = await fixture('inotify');
    const fd = fdOf(fx, 'inotify');
    const before = capture([fx.pid]);
    // inotify used to be refused as "cannot be restored yet".
    expect(before.problems).toEqual([]);
    const { pid, after } = await restoreAndRecapture(before.checkpoint, started, batch);
    expect(diffCheckpoints(before.checkpoint, after.checkpoint)).toEqual([]);
    const was = watchLines(fx.pid, fd);
    expect(was.map((w) => w.wd)).toEqual(['1', '3', '5']);
    expect(watchLines(pid, fd)).toEqual(was);
    const file = fileAtFd(after.checkpoint, pid, fd);
    expect(file.flags & O.NONBLOCK).toBe(O.NONBLOCK);
    expect(after.checkpoint.tables[0]!.fds.find((e) => e.fd === fd)!.cloexec).toBe(true);
  });
});

test('the restored program gets an event on a watched file with its original wd, and no IN_IGNORED', async () => {
  const fx = await fixture('inotify');
  const cp = capture([fx.pid]).checkpoint;
  const script = [
    'import os, sys, json, struct, select',
    `fd, d = ${fdOf(fx, 'inotify')}, ${JSON.stringify(`${fx.dir}/watched`)}`,
    // Whatever the queue holds before the program acts: restore must leave it empty.
    'try:',
    '    early = len(os.read(fd, 65536))',
    'except BlockingIOError:',
    '    early = 0',
    "with open(os.path.join(d, 'b.txt'), 'a') as f: f.write('x')",
    "open(os.path.join(d, 'new.txt'), 'w').close()",
    'select.select([fd], [], [], 5)',
    'buf, events = os.read(fd, 65536), []',
    'while buf:',
    "    wd, mask, cookie, n = struct.unpack('iIII', buf[:16])",
    "    events.append([wd, mask, buf[16:16 + n].rstrip(b'\\0').decode()]); buf = buf[16 + n:]",
    "json.dump({'early': early, 'events': events}, open(sys.argv[1], 'w'))",
  ];
  const IN_MODIFY = 0x2;
  const IN_CREATE = 0x100;
  expect(await runRestoredPython(cp, script, fx.dir, started)).toEqual({
    early: 0,
    events: [
      [3, IN_MODIFY, ''],
      [1, IN_CREATE, 'new.txt'],
    ],
  });
});

test('a wd far above the others (2500: 2497 ids burnt, their IN_IGNORED read off in 3 reads)', async () => {
  const fx = await fixture('inotify');
  const fd = fdOf(fx, 'inotify');
  const cp = capture([fx.pid]).checkpoint;
  const data = fileAtFd(cp, fx.pid, fd).data as { watches: InotifyWatch[] };
  data.watches.find((w) => w.wd === 5)!.wd = 2500;
  const script = [
    'import os, sys, json, re',
    `fd = ${fd}`,
    'try:',
    '    early = len(os.read(fd, 65536))',
    'except BlockingIOError:',
    '    early = 0',
    "wds = sorted(int(w, 16) for w in re.findall(r'inotify wd:([0-9a-f]+)', open(f'/proc/self/fdinfo/{fd}').read()))",
    "json.dump({'early': early, 'wds': wds}, open(sys.argv[1], 'w'))",
  ];
  expect(await runRestoredPython(cp, script, fx.dir, started)).toEqual({ early: 0, wds: [1, 3, 2500] });
});

test('a watched file deleted before the restore: refused, naming the fd and the wd, nothing started', async () => {
  const fx = await fixture('inotify');
  const fd = fdOf(fx, 'inotify');
  const cp = capture([fx.pid]).checkpoint;
  fs.unlinkSync(`${fx.dir}/watched/c.txt`);
  const err = await restore(cp, ['sleep', '60'], { stdio: 'ignore' }).then(
    (r) => {
      started.push(r);
      throw new Error('restored');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ReplayError);
  const e = err as ReplayError;
  expect(e.fd).toBe(fd);
  expect(e.message).toMatch(
    new RegExp(
      `^fd ${fd} \\(anon_inode:inotify\\): inotify wd 5 \\(ino \\d+ on device \\d+:\\d+\\): .*ESTALE: the file is gone`,
    ),
  );
  // Only wd 5 is named: the other watches resolve.
  expect(e.message).not.toMatch(/wd [13] /);
  // Refused while planning: no program was started, so none runs half-restored.
  expect(e.targetPid).toBeUndefined();
});

test('the CLI: capture → inspect → restore of an inotify fd', async () => {
  const fx = await fixture('inotify');
  const fd = fdOf(fx, 'inotify');
  const image = `${fx.dir}/img.fdimg`;
  const out = await cli(['capture', '--pid', String(fx.pid), '--output', image]);
  expect(out).toMatchObject({ code: 0, stderr: '' });
  const shown = await cli(['inspect', image, '--json']);
  expect(shown.code).toBe(0);
  const json = JSON.parse(shown.stdout) as {
    version: number;
    processes: { fds: { fd: number; file: number }[] }[];
    files: { objref: number; data: { watches: { wd: number; handle?: { bytes: string } }[] } }[];
  };
  const objref = json.processes[0]!.fds.find((e) => e.fd === fd)!.file;
  const { watches } = json.files.find((f) => f.objref === objref)!.data;
  expect(json.version).toBe(4);
  expect(watches.map((w) => w.wd).sort()).toEqual([1, 3, 5]);
  expect(watches.every((w) => typeof w.handle?.bytes === 'string')).toBe(true);
  // --fds all: the fd is close-on-exec, which the default (program) leaves out. The restored shell's exit status says whether its fd lists the same wds (close-on-exec: grep reads it as $$).
  const script = `[ "$(grep -o 'inotify wd:[0-9a-f]*' /proc/$$/fdinfo/${fd} | sort | tr '\\n' ' ')" = "inotify wd:1 inotify wd:3 inotify wd:5 " ] && exit 7; exit 1`;
  expect(await cli(['restore', '--image', image, '--fds', 'all', '--', 'sh', '-c', script])).toMatchObject({
    code: 7,
    stderr: '',
  });
});

describe('what a hostile image may claim is refused, naming the fd, before anything starts', () => {
  const watch = {
    ino: 12,
    sdev: 0xfe00000,
    mask: 0x2,
    ignoredMask: 0,
    handle: { type: 1, bytes: Buffer.alloc(8) },
  };
  const imageOf = (watches: InotifyWatch[]): Checkpoint =>
    checkpointOf([
      { fd: 4, file: fileOf('inotify', 'anon_inode:inotify', O.RDONLY, 0, { type: 'inotify', watches }) },
    ]);
  const refusal = (watches: InotifyWatch[]): string => {
    try {
      planRestore(imageOf(watches), DEFAULT_POLICY);
    } catch (err) {
      expect(err).toBeInstanceOf(ReplayError);
      return (err as Error).message;
    }
    throw new Error('planned');
  };

  test('10^6 watches, a wd of 10^6, a duplicate wd, a mask the kernel never keeps, a 4 KB handle', () => {
    const many = Array.from({ length: 1_000_000 }, (_, i) => ({ ...watch, wd: i + 1 }));
    expect(refusal(many)).toMatch(
      /^fd 4 \(anon_inode:inotify\): inotify with 1000000 watches \(at most 65536\)/,
    );
    expect(refusal([{ ...watch, wd: 1_000_000 }])).toMatch(/inotify wd 1000000 is outside 1\.\.65536/);
    expect(
      refusal([
        { ...watch, wd: 2 },
        { ...watch, wd: 2 },
      ]),
    ).toMatch(/inotify wd 2 listed twice/);
    expect(refusal([{ ...watch, wd: 1, mask: 0x1000000 }])).toMatch(
      /mask 0x1000000 is not one inotify_add_watch keeps/,
    );
    const big = { ...watch, wd: 1, handle: { type: 1, bytes: Buffer.alloc(4096) } };
    expect(refusal([big])).toMatch(
      /wd 1 \(ino 12 on device 254:0\): a file handle of 4096 bytes \(1 to 128\)/,
    );
    // And the reader refuses such a handle in an image outright.
    const bytes = encodeCheckpoint(imageOf([big]));
    expect(() => decodeCheckpoint(bytes)).toThrow(/handle\.bytes: 4096 bytes, a file handle has 1 to 128/);
  });
});
