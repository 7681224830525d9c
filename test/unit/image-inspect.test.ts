/** inspect: the JSON form's exact shape, and the human table. */
import { describe, expect, test } from '@jest/globals';
import { FORMAT_VERSION } from '../../src/agent/image/index.js';
import { renderInspectTable, toInspectJson } from '../../src/agent/image/inspect.js';
import { O } from '../../src/agent/model.js';
import { richCheckpoint } from '../support/image-fixtures.js';

describe('toInspectJson', () => {
  test('has the documented shape', () => {
    const json = toInspectJson(richCheckpoint());
    expect(json.version).toBe(FORMAT_VERSION);
    expect(json.processes[2]).toMatchObject({
      pid: 900,
      comm: 'sidecar',
      argv: ['sidecar', 'naïve ☃ 😀'],
      fds: [
        { fd: 0, file: 10, cloexec: false },
        { fd: 1, file: 1, cloexec: false },
        { fd: 5, file: 7, cloexec: false },
      ],
    });
    expect(json.files[0]).toMatchObject({
      objref: 1,
      type: 'regular',
      flags: O.WRONLY | O.APPEND,
      pos: 12345,
      path: '/var/log/app.log',
      flagNames: 'O_WRONLY|O_APPEND',
      ignored: null,
    });
    // The required keys come first and are exactly these.
    expect(Object.keys(json).slice(0, 1)).toEqual(['version']);
    expect(Object.keys(json.processes[0]!).slice(0, 4)).toEqual(['pid', 'comm', 'argv', 'fds']);
    expect(Object.keys(json.files[0]!).slice(0, 5)).toEqual(['objref', 'type', 'flags', 'pos', 'path']);
  });

  test('is JSON-safe: bigints become strings, Buffers base64', () => {
    const json = toInspectJson(richCheckpoint());
    const text = JSON.stringify(json);
    const back = JSON.parse(text) as typeof json;
    expect(back).toEqual(json);
    const byRef = new Map(back.files.map((f) => [f.objref, f]));
    expect(byRef.get(8)!.data).toEqual({ type: 'eventfd', count: '18446744073709551614', semaphore: true });
    expect(byRef.get(4)!.data).toMatchObject({ buffered: Buffer.from('hello').toString('base64') });
    expect(byRef.get(9)!.data).toMatchObject({
      targets: [{ data: 0xdead_beef_cafe_f00dn.toString() }, {}, {}],
    });
    expect(byRef.get(8)!.ignored).toBe('type');
  });

  test('flags never carry O_CLOEXEC', () => {
    const cp = richCheckpoint();
    cp.files[0]!.flags |= O.CLOEXEC;
    expect(toInspectJson(cp).files[0]!.flags).toBe(O.WRONLY | O.APPEND);
  });
});

describe('renderInspectTable', () => {
  const text = renderInspectTable(richCheckpoint());
  const lines = text.split('\n');

  test('one section per process, with a header row', () => {
    expect(lines[0]).toBe(
      'image v4  node node-a  source default/web-0  2026-09-21T14:13:20.123Z  kernel 6.18.0  fdckpt 0.1.0',
    );
    expect(text).toContain('process 812 (web) tgid 812  table 100, shared with pid 813');
    expect(text).toContain('process 900 (sidecar) tgid 900  table 101');
    expect(text).toMatch(/^ {2}FD +TYPE +FLAGS +POS +PATH +SHARED-WITH +CLOEXEC +IGNORED$/m);
    expect(text).toContain(
      'process 901 (idle) tgid 901  table 102\n  argv: "sleep" "inf"\n  cwd: /\n  (no fds)',
    );
  });

  function row(pidHeading: string, fd: number): string[] {
    const start = lines.findIndex((l) => l.startsWith(pidHeading));
    const line = lines.slice(start).find((l) => l.startsWith(`  ${fd} `))!;
    return line.trim().split(/ {2,}/);
  }

  test('flags in words, pos, path, sharing within and across processes', () => {
    expect(row('process 812', 1)).toEqual([
      '1',
      'regular',
      'O_WRONLY|O_APPEND',
      '12345',
      '/var/log/app.log',
      'fd 2, pid 900 fd 1',
      'no',
    ]);
    expect(row('process 900', 1)).toEqual([
      '1',
      'regular',
      'O_WRONLY|O_APPEND',
      '12345',
      '/var/log/app.log',
      'pid 812 fd 1, pid 812 fd 2',
      'no',
    ]);
    expect(row('process 812', 3)).toEqual([
      '3',
      'fifo',
      'O_RDWR|O_NONBLOCK',
      '0',
      '/run/ctl.fifo',
      '-',
      'yes',
    ]);
  });

  test('a table shared by tasks is shown once, and its fds are not listed as sharing with each other', () => {
    expect(text).toContain(
      'process 813 (web-worker) tgid 812  table 100, shared with pid 812\n  argv:\n  cwd: /srv\n  fds: the file table of pid 812, above\n',
    );
    expect(row('process 812', 3)).toEqual([
      '3',
      'fifo',
      'O_RDWR|O_NONBLOCK',
      '0',
      '/run/ctl.fifo',
      '-',
      'yes',
    ]);
  });

  test('ignored files are marked', () => {
    expect(row('process 812', 7)).toEqual([
      '7',
      'eventfd',
      'O_RDONLY',
      '0',
      'anon_inode:[eventfd]',
      '-',
      'no',
      'ignored (type)',
    ]);
    expect(row('process 812', 0)).toContain('ignored (fd)');
  });

  test('control characters in paths are escaped', () => {
    const cp = richCheckpoint();
    cp.files[0]!.path = '/tmp/a\nb';
    expect(renderInspectTable(cp)).toContain('/tmp/a\\x0ab');
  });

  test('files held by no fd are listed', () => {
    const cp = richCheckpoint();
    cp.tables[0]!.fds = cp.tables[0]!.fds.filter((d) => d.file !== 12);
    expect(renderInspectTable(cp)).toContain(
      'open files held by no fd (e.g. only watched by an epoll):\n  objref 12  signalfd  anon_inode:[signalfd]',
    );
  });
});
