/**
 * The image against real captures: a child process sets up every kind of fd
 * the fixture knows (plus a thread and a forked child sharing files), we
 * capture it, write the image, read it back, and compare; then inspect and
 * diff the real checkpoint.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capture } from '../../src/agent/capture/index.js';
import {
  decodeCheckpoint,
  diffCheckpoints,
  encodeCheckpoint,
  readImage,
  renderInspectTable,
  toInspectJson,
  writeImage,
} from '../../src/agent/image/index.js';
import type { Checkpoint } from '../../src/agent/model.js';
import { fdOf, startFixture, type Fixture } from '../support/fixture.js';

const SCENARIOS = [
  'files',
  'pipes',
  'fifo',
  'eventfd',
  'epoll',
  'sockets',
  'ptys',
  'memfd',
  'signalfd-timerfd',
];

let fx: Fixture;
let pids: number[];
let cp: Checkpoint;
let dir: string;

beforeAll(async () => {
  fx = await startFixture([...SCENARIOS, 'threads', 'fork-shared']);
  pids = [...(fx.info.threads as number[]), fx.info.child as number];
  cp = capture(pids, { source: 'image-capture test' }).checkpoint;
  dir = mkdtempSync(join(tmpdir(), 'fdckpt-image-engine-'));
});

afterAll(async () => {
  await fx?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('image of a real capture', () => {
  test('covers many file types, a shared table and a cross-process shared file', () => {
    const types = new Set(cp.files.map((f) => f.type));
    for (const t of [
      'regular',
      'directory',
      'fifo',
      'pipe',
      'socket',
      'eventfd',
      'eventpoll',
      'tty',
      'memfd',
    ]) {
      expect([t, types.has(t as never)]).toEqual([t, true]);
    }
    expect(cp.processes.length).toBe(pids.length);
    expect(new Set(cp.processes.map((p) => p.table)).size).toBe(2); // threads share one table; the child has its own
  });

  test('writeImage then readImage gives back exactly the captured checkpoint', async () => {
    const path = join(dir, 'real.fdimg');
    await writeImage(path, cp);
    expect(await readImage(path)).toStrictEqual(cp);
    expect(decodeCheckpoint(encodeCheckpoint(cp))).toStrictEqual(cp);
  });

  test('inspect JSON survives JSON.stringify and shows the fixture fds', () => {
    const json = JSON.parse(JSON.stringify(toInspectJson(cp))) as ReturnType<typeof toInspectJson>;
    const leader = json.processes.find((p) => p.pid === fx.pid)!;
    const a = leader.fds.find((d) => d.fd === fdOf(fx, 'a'))!;
    const file = json.files.find((f) => f.objref === a.file)!;
    expect(file).toMatchObject({ type: 'regular', pos: 17, path: join(fx.dir, 'data.txt') });
  });

  test('the inspect table lists the leader fds with sharing', () => {
    const text = renderInspectTable(cp);
    const line = text.split('\n').find((l) => l.startsWith(`  ${fdOf(fx, 'high')} `))!;
    expect(line).toContain('O_RDWR|O_NONBLOCK');
    expect(line).toContain(`fd ${fdOf(fx, 'c')}`);
  });

  test('two captures of the idle process have no differences; a moved offset is one', () => {
    const again = capture(pids).checkpoint;
    expect(diffCheckpoints(cp, again)).toEqual([]);
    const moved = structuredClone(again);
    const leader = moved.processes.findIndex((p) => p.pid === fx.pid);
    const table = moved.tables.find((t) => t.objref === moved.processes[leader]!.table)!;
    const objref = table.fds.find((d) => d.fd === fdOf(fx, 'a'))!.file;
    moved.files.find((f) => f.objref === objref)!.pos = 18;
    // The dup shares a's open file, and so does the forked child, which inherited both fds.
    const child = moved.processes.findIndex((p) => p.pid === fx.info.child);
    const fds = [fdOf(fx, 'a'), fdOf(fx, 'cloexec_dup')];
    expect(diffCheckpoints(cp, moved).map((d) => d.message)).toEqual(
      [leader, child].flatMap((i) => fds.map((fd) => `process ${i} fd ${fd}: pos 17 != 18`)),
    );
  });
});
