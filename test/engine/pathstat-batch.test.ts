/**
 * Replay's batched validation (PathView.statMany, one native call for a table's paths)
 * answers exactly what the view's own lstat and stat answer path by path, failures
 * worded the same: in this process's view and inside a process's root (openat2
 * RESOLVE_IN_ROOT), for files, directories, FIFOs, symlinks (to files, to nothing, to a
 * directory on the way), missing paths and paths that climb out of the root.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostView, prefetched, rootView, type PathView } from '../../src/agent/linux/pathstat.js';

let dir: string;
let paths: string[];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fdckpt-statmany-'));
  writeFileSync(join(dir, 'file'), 'x'.repeat(123));
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'inner'), '');
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  symlinkSync(join(dir, 'file'), join(dir, 'link'));
  symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling'));
  symlinkSync(join(dir, 'sub'), join(dir, 'subdir-link'));
  paths = [
    join(dir, 'file'),
    join(dir, 'sub'),
    join(dir, 'sub', 'inner'),
    join(dir, 'fifo'),
    join(dir, 'link'),
    join(dir, 'dangling'),
    join(dir, 'subdir-link', 'inner'),
    join(dir, 'missing'),
    join(dir, 'file', 'not-a-dir'),
    '/../../etc/hostname',
    '/dev/null',
  ];
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function agree(view: PathView): void {
  const batch = view.statMany(paths);
  expect(batch).toHaveLength(paths.length);
  paths.forEach((p, i) => {
    expect([p, batch[i]!.lstat]).toEqual([p, view.lstat(p)]);
    expect([p, batch[i]!.stat]).toEqual([p, view.stat(p)]);
  });
  // Not a copy of one answer: the kinds differ as the files do.
  const kinds = new Set(
    batch.map((b) => ('error' in b.lstat ? b.lstat.error.slice(-6) : b.lstat.mode >> 12)),
  );
  expect(kinds.size).toBeGreaterThanOrEqual(5);
}

describe('PathView.statMany', () => {
  test("this process's view: the same answers as lstat and stat one by one", () => agree(hostView));

  test("inside a process's root: the same answers, failures named as openat2 and fstat name them", () => {
    const view = rootView(process.pid);
    try {
      agree(view);
      expect(view.statMany([join(dir, 'missing')])[0]!.stat).toEqual({
        error: `openat2(pid ${process.pid} root, ${join(dir, 'missing')}): ENOENT`,
      });
    } finally {
      view.close();
    }
  });

  test('prefetched answers the listed paths from the batch and the others from the view', () => {
    const calls: string[] = [];
    const counting: PathView = {
      ...hostView,
      stat: (p) => (calls.push(`stat ${p}`), hostView.stat(p)),
      lstat: (p) => (calls.push(`lstat ${p}`), hostView.lstat(p)),
    };
    const view = prefetched(counting, [paths[0]!, paths[0]!, paths[1]!, 'with\0nul']);
    expect(view.stat(paths[0]!)).toEqual(hostView.stat(paths[0]!));
    expect(view.lstat(paths[1]!)).toEqual(hostView.lstat(paths[1]!));
    expect(calls).toEqual([]);
    expect(view.stat(paths[2]!)).toEqual(hostView.stat(paths[2]!));
    expect(calls).toEqual([`stat ${paths[2]}`]);
    expect(hostView.statMany([])).toEqual([]);
  });
});
