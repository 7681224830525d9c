/**
 * Figures for the real local control plane (etcd, kube-apiserver, controller-manager,
 * scheduler, one process kubelet): start-up to ready, pod create → Running through the
 * scheduler and the process kubelet, and the fdckpt controller — run as its own process
 * with its deploy/ ServiceAccount — reconciling BENCH_CHECKPOINTS (default 1000)
 * Checkpoints of one pod to Scheduled: its reconcile rate and its RSS (VmRSS at the end,
 * VmHWM the peak). No agent runs, so every Checkpoint stops at Scheduled: this measures
 * the controller and the API server, not capture. Run: npm run bench:local
 */
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adminKubeConfig } from '../src/local/cluster/cluster.js';
import { installOperator } from '../src/local/cluster/install.js';
import { startControlPlane } from '../src/local/controlplane.js';

const count = Number(process.env['BENCH_CHECKPOINTS'] ?? '1000');
const root = fileURLToPath(new URL('../../', import.meta.url));

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

const work = mkdtempSync(join(tmpdir(), 'fdckpt-bench-local-'));
const load = loadavg()[0]!.toFixed(2);
let t = process.hrtime.bigint();
const cp = await startControlPlane({ nodes: 1, dataDir: work });
const startup = ms(t);
const kc = adminKubeConfig(cp.cluster);
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);

t = process.hrtime.bigint();
await core.createNamespacedPod({
  namespace: 'default',
  body: {
    metadata: { name: 'target' },
    spec: { containers: [{ name: 'c', image: 'host', command: ['sleep', '1000'] }] },
  },
});
for (;;) {
  const pod = await core.readNamespacedPod({ namespace: 'default', name: 'target' });
  if (pod.status?.phase === 'Running') break;
  await new Promise((r) => setTimeout(r, 20));
}
const podStart = ms(t);

const credentials = await installOperator(cp.cluster, cp.kubeconfigPath);
const controller = spawn(
  process.execPath,
  [
    join(root, 'bin/fdckpt.js'),
    'controller',
    '--kubeconfig',
    credentials.controller,
    '--port',
    '0',
    '--no-leader-elect',
    '--launcher-host-path',
    '/bin/true',
  ],
  // BENCH_CONTROLLER_NODE_OPTIONS: the controller's NODE_OPTIONS (deploy/controller.yaml sets a heap bound).
  {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { ...process.env, NODE_OPTIONS: process.env['BENCH_CONTROLLER_NODE_OPTIONS'] ?? '' },
  },
);
await new Promise((r) => setTimeout(r, 2000));
const idle = memory(controller.pid!);

t = process.hrtime.bigint();
const creates: Promise<unknown>[] = [];
for (let i = 0; i < count; i++) {
  creates.push(
    custom.createNamespacedCustomObject({
      group: 'fdckpt.io',
      version: 'v1alpha1',
      namespace: 'default',
      plural: 'checkpoints',
      body: {
        apiVersion: 'fdckpt.io/v1alpha1',
        kind: 'Checkpoint',
        metadata: { name: `c-${i}` },
        spec: { podName: 'target' },
      },
    }),
  );
  if (creates.length >= 20) await Promise.all(creates.splice(0));
}
await Promise.all(creates);
const createMs = ms(t);
let scheduled = 0;
for (;;) {
  const list = (await custom.listNamespacedCustomObject({
    group: 'fdckpt.io',
    version: 'v1alpha1',
    namespace: 'default',
    plural: 'checkpoints',
  })) as { items: { status?: { conditions?: { type: string; status: string }[] } }[] };
  scheduled = list.items.filter((c) =>
    c.status?.conditions?.some((x) => x.type === 'Scheduled' && x.status === 'True'),
  ).length;
  if (scheduled >= count) break;
  await new Promise((r) => setTimeout(r, 200));
}
const allMs = ms(t);
const busy = memory(controller.pid!);
controller.kill('SIGTERM');
await cp.stop();
rmSync(work, { recursive: true, force: true });

const lines = [
  `real local control plane (1 node), node ${process.version}, ${new Date().toISOString()}, load ${load}`,
  `start-up to ready (etcd, apiserver, controller-manager, scheduler, kubelet): ${startup.toFixed(0)} ms`,
  `pod create -> Running:                     ${podStart.toFixed(0)} ms`,
  `create ${count} Checkpoints (20 in flight):  ${createMs.toFixed(0)} ms`,
  `all ${scheduled} Scheduled by the controller: ${allMs.toFixed(0)} ms from the first create = ${((count / allMs) * 1000).toFixed(0)} reconciles/s`,
  `controller (NODE_OPTIONS '${process.env['BENCH_CONTROLLER_NODE_OPTIONS'] ?? ''}') RSS: ${idle.rss.toFixed(0)} MB idle, ${busy.rss.toFixed(0)} MB after, peak ${busy.hwm.toFixed(0)} MB`,
];
process.stdout.write(`${lines.join('\n')}\n`);
