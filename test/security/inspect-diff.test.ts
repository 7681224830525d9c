/**
 * Issue 12, items 7, 16 and 18: `inspect` and `diff` read images someone else
 * made. 8,000 fds on one open file took 14.6 s and 1.24 GB, then "Invalid
 * string length" (each row listed every other holder); their output is now
 * linear in the image, each list capped with "… and N more". A header time
 * the format allows is printed even where Date cannot hold it, and `diff`
 * escapes terminal controls in paths as `inspect` does. The real CLI, on
 * generated images; assertions on what is printed, not on time.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeImage } from '../../src/agent/image/index.js';
import type { Checkpoint, FileRecord } from '../../src/agent/model.js';
import { O } from '../../src/agent/model.js';
import { fdckpt } from '../support/cli.js';
import { regularFile } from '../support/image-fixtures.js';

const FDS = 8000;
let dir: string;

const file = (objref: number, path: string): FileRecord => regularFile(objref, path, O.RDWR);

/** One process; `fds` fds all on one open file, or each on its own. */
function image(opts: { shared: boolean; time?: number; path?: string; tasks?: number }): Checkpoint {
  const fds = Array.from({ length: FDS }, (_, i) => ({
    fd: i + 3,
    file: opts.shared ? 1 : i + 1,
    cloexec: false,
  }));
  const files = opts.shared ? [file(1, opts.path ?? '/f')] : fds.map((d) => file(d.file, opts.path ?? '/f'));
  const tasks = opts.tasks ?? 1;
  return {
    header: { node: 'n', source: 's', time: opts.time ?? 1, kernel: 'k', tool: 't' },
    processes: Array.from({ length: tasks }, (_, i) => ({
      pid: 100 + i,
      tgid: 100,
      comm: 'c',
      argv: ['c'],
      cwd: '/',
      table: 100_000,
    })),
    tables: [{ objref: 100_000, fds }],
    files,
  };
}

async function write(name: string, cp: Checkpoint): Promise<string> {
  const path = join(dir, name);
  await writeImage(path, cp);
  return path;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fdckpt-sec-inspect-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('inspect and diff are linear in the image', () => {
  it('inspect: 8,000 fds on one open file, 4,000 tasks sharing the table: capped lists, bounded output', async () => {
    const img = await write('shared.fdckpt', image({ shared: true, tasks: 4000 }));
    const r = fdckpt('inspect', img);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => /^ {2}\d+ /.test(l));
    expect(rows).toHaveLength(FDS);
    for (const row of rows) expect(row).toContain(`… and ${FDS - 1 - 8} more`);
    expect(r.stdout).toContain(
      `shared with pid 101, 102, 103, 104, 105, 106, 107, 108 … and ${4000 - 9} more`,
    );
    // Linear: a few hundred bytes per fd and per task, for an image of this size.
    expect(r.stdout.length).toBeLessThan(200 * (FDS + 4000));
  });

  it('diff: every fd’s sharing differs, each difference on one bounded line', async () => {
    const a = await write('a.fdckpt', image({ shared: true }));
    const b = await write('b.fdckpt', image({ shared: false }));
    const r = fdckpt('diff', a, b);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`${FDS} differences:`);
    expect(lines).toHaveLength(FDS + 1);
    for (const line of lines.slice(1)) {
      expect(line).toMatch(/shares its open file with .* … and 7991 more in a, with no other fd in b$/);
      expect(line.length).toBeLessThan(300);
    }
    const json = fdckpt('diff', a, b, '--json');
    expect(json.status).toBe(1);
    const parsed = JSON.parse(json.stdout) as { differences: { a: string }[] };
    expect(parsed.differences).toHaveLength(FDS);
    expect(parsed.differences.every((d) => d.a.length < 200)).toBe(true);
  });

  it('inspect prints header times the format allows that Date cannot hold (item 16)', async () => {
    for (const time of [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 8.64e15 + 1]) {
      const img = await write('time.fdckpt', {
        ...image({ shared: true }),
        header: { node: 'n', source: 's', time, kernel: 'k', tool: 't' },
      });
      const r = fdckpt('inspect', img);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout.split('\n')[0]).toContain(`  ${time}  kernel`);
    }
    const img = await write('time.fdckpt', {
      ...image({ shared: true }),
      header: { node: 'n', source: 's', time: 8.64e15, kernel: 'k', tool: 't' },
    });
    expect(fdckpt('inspect', img).stdout).toContain('+275760-09-13T00:00:00.000Z');
  });

  it('diff escapes terminal controls in paths and names as inspect does (item 18)', async () => {
    const evil = '/tmp/\x1b]0;owned\x07\x1b[2J\x9b31m\x7f';
    const a = await write('ea.fdckpt', image({ shared: true, path: evil }));
    const b = await write('eb.fdckpt', image({ shared: true, path: '/tmp/plain' }));
    const small = (p: string): Promise<string> =>
      write(p, {
        ...image({ shared: true, path: evil }),
        tables: [{ objref: 100_000, fds: [{ fd: 3, file: 1, cloexec: false }] }],
      });
    for (const [x, y] of [
      [a, b],
      [
        await small('sa.fdckpt'),
        await write('sb.fdckpt', { ...image({ shared: true }), tables: [{ objref: 100_000, fds: [] }] }),
      ],
    ]) {
      const r = fdckpt('diff', x!, y!);
      expect(r.status).toBe(1);
      expect(r.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/); // eslint-disable-line no-control-regex
      // Escaped as JSON does (\u001b) in a quoted path, as inspect does (\x1b) elsewhere.
      expect(r.stdout).toMatch(/(\\x1b|\\u001b)\]0;owned/);
      expect(r.stdout).toContain('\\x9b31m\\x7f');
    }
    const shown = fdckpt('inspect', a).stdout;
    expect(shown).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/); // eslint-disable-line no-control-regex
  });
});
