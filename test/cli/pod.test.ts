/** `--pod-uid` / `--container`: a pod found in the local kubelet's layout, captured whole or by container. */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { rmdirSync } from 'node:fs';
import { fdckpt } from '../support/cli.js';
import { makeCgroup } from '../support/cgtest.js';
import { startLeakPair, type LeakPair } from '../support/leakpair.js';

const uid = randomUUID();
const app = randomBytes(32).toString('hex');
const sidecar = randomBytes(32).toString('hex');
let pair: LeakPair;
let podDir: string;

beforeAll(async () => {
  // Where the project's local kubelet puts a besteffort pod's containers.
  const appDir = makeCgroup('v2', `/kubepods/besteffort/pod${uid}/${app}`);
  const sidecarDir = makeCgroup('v2', `/kubepods/besteffort/pod${uid}/${sidecar}`);
  podDir = appDir.slice(0, appDir.lastIndexOf('/'));
  pair = await startLeakPair({ podDir: appDir, outDir: sidecarDir });
});

afterAll(async () => {
  await pair.stop();
  rmdirSync(podDir);
});

interface LeaksJson {
  leaks: { inside: { pid: number }; outside: { pid: number; cgroup: string; pod?: { uid: string } } }[];
}

test('one container of the pod: the other container is outside, and named by pod', () => {
  const r = fdckpt('leaks', '--pod-uid', uid, '--container', `containerd://${app}`, '--json');
  expect(r.status).toBe(3);
  const json = JSON.parse(r.stdout) as LeaksJson;
  expect(json.leaks).toHaveLength(7);
  for (const l of json.leaks) {
    expect(l.inside.pid).toBe(pair.child);
    expect(l.outside).toMatchObject({
      pid: pair.outside.pid,
      cgroup: `/kubepods/besteffort/pod${uid}/${sidecar}`,
      pod: { uid },
    });
  }
});

test('the whole pod: what the containers share is inside, no leak', () => {
  const r = fdckpt('leaks', '--pod-uid', uid, '--json');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect((JSON.parse(r.stdout) as LeaksJson).leaks).toEqual([]);
});

test('an unknown container of a known pod is named', () => {
  const r = fdckpt('preflight', '--pod-uid', uid, '--container', 'cd'.repeat(32));
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(new RegExp(`container ${'cd'.repeat(32)} of pod ${uid}: no cgroup in`));
});
