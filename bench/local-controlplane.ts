/**
 * Figures for the local control plane: start-up to ready, API write/list throughput and
 * watch delivery through the real client-node, and pod start/stop through the process
 * kubelet (create → Running, delete → gone). LOCAL_OBJECTS (default 1000), LOCAL_PODS
 * (default 20). Run: npm run bench:local
 */
import { CoreV1Api, KubeConfig, Watch, type V1Pod } from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from '../src/local/controlplane.js';

const objects = Number(process.env['LOCAL_OBJECTS'] ?? '1000');
const pods = Number(process.env['LOCAL_PODS'] ?? '20');

function ms(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 2));
}

const work = mkdtempSync(join(tmpdir(), 'fdckpt-bench-local-'));
let t = process.hrtime.bigint();
const cp = await startControlPlane({ nodes: 2, dataDir: work });
const startup = ms(t);
const kc = new KubeConfig();
kc.loadFromFile(cp.kubeconfigPath);
const core = kc.makeApiClient(CoreV1Api);

// Watch delivery: time from sending a create to receiving its watch event, per object.
const sentAt = new Map<string, bigint>();
const delays: number[] = [];
const watch = await new Watch(kc).watch(
  '/api/v1/namespaces/default/configmaps',
  { resourceVersion: String(cp.api.store.currentRv()) },
  (type: string, obj: { metadata?: { name?: string } }) => {
    const s = sentAt.get(obj.metadata?.name ?? '');
    if (type === 'ADDED' && s !== undefined) delays.push(ms(s));
  },
  () => undefined,
);

t = process.hrtime.bigint();
for (let i = 0; i < objects; i++) {
  const name = `cm-${i}`;
  sentAt.set(name, process.hrtime.bigint());
  await core.createNamespacedConfigMap({
    namespace: 'default',
    body: { metadata: { name }, data: { i: String(i) } },
  });
}
const createMs = ms(t);
t = process.hrtime.bigint();
const list = await core.listNamespacedConfigMap({ namespace: 'default' });
const listMs = ms(t);
await until(() => Promise.resolve(delays.length >= objects));
watch.abort();

const startLat: number[] = [];
const stopLat: number[] = [];
for (let i = 0; i < pods; i++) {
  const name = `p-${i}`;
  const body: V1Pod = {
    metadata: { name },
    spec: { containers: [{ name: 'c', image: 'ignored', command: ['sleep', '1000'] }] },
  };
  t = process.hrtime.bigint();
  await core.createNamespacedPod({ namespace: 'default', body });
  await until(
    async () => (await core.readNamespacedPod({ namespace: 'default', name })).status?.phase === 'Running',
  );
  startLat.push(ms(t));
  t = process.hrtime.bigint();
  await core.deleteNamespacedPod({ namespace: 'default', name });
  await until(() =>
    core.readNamespacedPod({ namespace: 'default', name }).then(
      () => false,
      () => true,
    ),
  );
  stopLat.push(ms(t));
}
await cp.stop();
rmSync(work, { recursive: true, force: true });

const lines = [
  `local control plane (2 nodes), node ${process.version}, ${new Date().toISOString()}`,
  `start-up to ready:                 ${startup.toFixed(0)} ms`,
  `create ${objects} configmaps (serial):  ${createMs.toFixed(0)} ms = ${((objects / createMs) * 1000).toFixed(0)} creates/s`,
  `list ${list.items.length} configmaps:            ${listMs.toFixed(1)} ms`,
  `create sent -> watch event:        median ${median(delays).toFixed(2)} ms, max ${Math.max(...delays).toFixed(2)} ms`,
  `pod create -> Running (${pods} pods):  median ${median(startLat).toFixed(1)} ms, max ${Math.max(...startLat).toFixed(1)} ms`,
  `pod delete -> gone (SIGTERM):       median ${median(stopLat).toFixed(1)} ms, max ${Math.max(...stopLat).toFixed(1)} ms`,
];
process.stdout.write(`${lines.join('\n')}\n`);
