/**
 * The parallel host scan, as the built CLI runs it (workers need the compiled
 * JavaScript, so this goes through dist/ in a child node): same hits as the
 * single-threaded scan.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { killAll, startPython, type Started } from '../support/cgtest.js';

const dist = fileURLToPath(new URL('../../dist/agent/collect/', import.meta.url));
const started: Started[] = [];
let keys: string[] = [];

// Each holder keeps 2000 pipes (so the scan has work to share) and reports one of them.
const HOLDER = `
import os, time
keep = [os.pipe() for _ in range(2000)]
ready({"key": "pipe:[%d]" % os.fstat(keep[-1][0]).st_ino, "r": keep[-1][0], "w": keep[-1][1]})
time.sleep(3600)
`;

beforeAll(async () => {
  for (let i = 0; i < 4; i++) started.push(await startPython(HOLDER));
  keys = started.map((s) => (JSON.parse(s.ready) as { key: string }).key);
});
afterAll(async () => {
  await killAll(started);
});

const SCRIPT = `
const { scanHostParallel } = await import(process.argv[1] + 'scanpool.js');
const { scanHost } = await import(process.argv[1] + 'hostscan.js');
const targets = { keys: new Set(process.argv.slice(2)), anonLinks: new Set() };
const exclude = new Set([process.pid]);
const sort = (hits) => hits.map((h) => h.pid + ':' + h.fd + ':' + h.key).sort();
const runs = [];
for (let i = 0; i < 3; i++) {
  const one = scanHost(targets, exclude);
  const par = scanHostParallel(targets, exclude, 2);
  runs.push({ one: sort(one.hits), par: sort(par.hits), threads: par.threads, fds: [one.fds, par.fds] });
  await new Promise((r) => setTimeout(r, 100)); // let the worker finish starting
}
console.log(JSON.stringify(runs));
`;

test('two threads find exactly what one finds', () => {
  if (!existsSync(`${dist}scanworker.js`))
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', SCRIPT, dist, ...keys], {
    encoding: 'utf8',
  });
  expect(r.stderr).toBe('');
  const runs = JSON.parse(r.stdout) as { one: string[]; par: string[]; threads: number }[];
  for (const run of runs) {
    expect(run.par).toEqual(run.one);
    // Both ends of each holder's reported pipe, in that holder.
    expect(run.one).toHaveLength(2 * started.length);
  }
  expect(Math.max(...runs.map((x) => x.threads))).toBe(2);
});

// The calling thread alone scans a small host before a fresh worker has loaded
// koffi. Returning then would let a one-shot CLI exit while the worker is inside
// dlopen, which aborts the process (napi_throw, seen in CI as a leaks CLI killed
// by SIGABRT about once in 50 runs). The scan must wait for the load.
const FIRST_SCAN = `
const { readdirSync } = await import('node:fs');
const { scanHostParallel, scanWorkersLoaded } = await import(process.argv[1] + 'scanpool.js');
// Nothing to scan (every pid excluded): the calling thread is done at once.
const everyone = new Set(readdirSync('/proc').filter((n) => /^[0-9]+$/.test(n)).map(Number));
const scan = scanHostParallel({ keys: new Set(), anonLinks: new Set() }, everyone, 2);
console.log(JSON.stringify({ loaded: scanWorkersLoaded(), threads: scan.threads }));
`;

test('a scan returns only once its workers have loaded, so the process can exit at once', () => {
  for (let i = 0; i < 5; i++) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', FIRST_SCAN, dist], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull();
    expect(JSON.parse(r.stdout)).toEqual({ loaded: [true], threads: expect.any(Number) as unknown });
  }
});
