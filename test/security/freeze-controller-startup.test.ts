/**
 * Issue 12 item 15: a controller whose start-up fails (its webhook's
 * configuration missing) kept running, /healthz 200, and never scheduled
 * anything — so nothing would ever thaw, bind or restore, and nobody was told.
 * It must exit non-zero saying why. The real `fdckpt controller` against the
 * local control plane, without deploy/webhook.yaml applied.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startControlPlane, type ControlPlane } from '../../src/local/controlplane.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
let cp: ControlPlane;
beforeAll(async () => {
  cp = await startControlPlane({ nodes: 1 });
}, 60_000);
afterAll(async () => {
  await cp?.stop();
});

test('start-up without the webhook configuration exits 1 and says why', async () => {
  if (!existsSync(join(root, 'dist', 'cli', 'main.js')))
    throw new Error('test prerequisite missing: dist/ (npm run build)');
  const child = spawn(
    process.execPath,
    [
      join(root, 'bin', 'fdckpt.js'),
      'controller',
      '--kubeconfig',
      cp.kubeconfigPath,
      '--port',
      '0',
      '--no-leader-elect',
      '--launcher-host-path',
      '/bin/true',
      '--webhook-port',
      '0',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once('exit', (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  expect({ code, signal }).toEqual({ code: 1, signal: null });
  expect(stderr).toMatch(/fdckpt controller: start-up failed: pod webhook: /);
}, 60_000);
