/**
 * Controller and agent in process on the local control plane (API double,
 * scheduler, process kubelet): pods of real processes in real cgroups, the
 * real engine. Each scenario goes through the API only, as kubectl would.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Checkpoint, Restore } from '../../src/api/index.js';
import { CHECKPOINT, RESTORE } from '../../src/api/index.js';
import { findPodCgroup, listTasks } from '../../src/agent/cgroup/index.js';
import { ResourceClient, loadKubeConfig, makeClients } from '../../src/kube/client.js';
import { startControlPlane, type ControlPlane } from '../../src/local/controlplane.js';
import { createCheckpoint, createRestore, reason, startTestOperator } from './support.js';
import { until as untilWithin } from '../support/until.js';
import { fdTable } from '../support/procfs.js';

/** These waits keep their 30 s bound. */
const until = <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> =>
  untilWithin(what, probe, 30_000);
import type { Harness } from './support.js';

const HOLD = fileURLToPath(new URL('../../native/build/fdckpt-hold', import.meta.url));

let cp: ControlPlane;
let h: Pick<Harness, 'core' | 'custom' | 'checkpoints' | 'restores'>;
let tmp: string;
const hostProcs: ChildProcess[] = [];

beforeAll(async () => {
  if (!existsSync(HOLD)) throw new Error(`test prerequisite missing: ${HOLD} (run npm run build:native)`);
  tmp = mkdtempSync(join(tmpdir(), 'fdckpt-int-'));
  cp = await startControlPlane({
    nodes: 1,
    startOperator: (info) => startTestOperator(info, { launcher: HOLD, installCrds: true }),
  });
  const kc = loadKubeConfig(cp.kubeconfigPath);
  const clients = makeClients(kc);
  h = {
    ...clients,
    checkpoints: new ResourceClient<Checkpoint>(clients.custom, CHECKPOINT),
    restores: new ResourceClient<Restore>(clients.custom, RESTORE),
  };
});

afterAll(async () => {
  for (const p of hostProcs) p.kill('SIGKILL');
  await cp?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/**
 * Closes every inherited fd above 2 first: the process kubelet passes on whatever fds
 * the test runner inherited, which would be real leaks across the pod boundary. The
 * container's stdio stays shared with the kubelet's shim, as with containerd: the agent
 * does not count that as a leak.
 */
const CLEAN_FDS = "import os, sys; os.closerange(3, 1 << 16); os.execvp('sh', ['sh', '-c', sys.argv[1]])";

async function runningPod(name: string, script: string): Promise<number> {
  await h.core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name, namespace: 'default' },
      spec: { containers: [{ name: 'app', image: 'host', command: ['python3', '-c', CLEAN_FDS, script] }] },
    },
  });
  return podProcess(name);
}

/** The pod's sleep process, found through its cgroup (as the agent finds it). */
async function podProcess(name: string): Promise<number> {
  return until(`pod ${name} running`, async () => {
    const pod = await h.core.readNamespacedPod({ name, namespace: 'default' });
    if (pod.status?.phase !== 'Running') return undefined;
    const ids = (pod.status.containerStatuses ?? []).map((c) => c.containerID ?? '');
    const cg = findPodCgroup(pod.metadata?.uid ?? '', ids);
    const pids = listTasks(cg.containers[0]!.cgroup).pids;
    return pids.find((p) => readlinkSync(`/proc/${p}/exe`).endsWith('/sleep'));
  });
}

async function checkpointDone(name: string): Promise<Checkpoint> {
  return until(`checkpoint ${name} finished`, async () => {
    const c = await h.checkpoints.get('default', name);
    return c.status?.phase === 'Ready' || c.status?.phase === 'Failed' ? c : undefined;
  });
}

describe('operator on the local control plane', () => {
  let image = '';
  let table: Record<string, string> = {};

  it('a Checkpoint of a pod of real processes becomes Ready with the right fd counts', async () => {
    const data = join(tmp, 'data.txt');
    execFileSync('sh', ['-c', `echo hello > ${data}`]);
    const pid = await runningPod('plain', `exec 3<${data} 4>>${join(tmp, 'out.log')}; exec sleep 1000 `);
    table = fdTable(pid);
    await createCheckpoint(h as Harness, 'plain', { podName: 'plain' });
    const c = await checkpointDone('plain');
    expect(reason(c, 'Ready')).toBe('True/Captured');
    expect(reason(c, 'LeakFree')).toBe('True/NoLeaks');
    expect(c.status?.totalFds).toBe(Object.keys(table).length);
    expect(c.status?.containers).toEqual([
      {
        name: 'app',
        processes: 1,
        fds: Object.keys(table).length,
        pid,
        argv: ['sleep', '1000'],
      },
    ]);
    image = c.status?.image?.path ?? '';
    expect(existsSync(image)).toBe(true);
    expect(c.status?.image?.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a Restore into a new pod gives the restored process the captured table; the pod keeps its own stdio', async () => {
    await createRestore(h as Harness, 'plain', { checkpointName: 'plain', target: { newPod: {} } });
    const r = await until('restore finished', async () => {
      const x = await h.restores.get('default', 'plain');
      return x.status?.phase === 'Ready' || x.status?.phase === 'Failed' ? x : undefined;
    });
    expect(reason(r, 'Ready')).toBe('True/Restored');
    // The default (Program): fds 0–2 are the new container's own (its log), 3 and 4 replayed.
    expect(r.status?.fdsReplayed).toBe(Object.keys(table).length - 3);
    const pid = await podProcess(r.status?.restoredPod ?? '');
    const restored = fdTable(pid);
    expect(Object.keys(restored).sort()).toEqual(Object.keys(table).sort());
    expect([restored['3'], restored['4']]).toEqual([table['3'], table['4']]);
    expect(restored['1']).not.toBe(table['1']);
  });

  it('a Restore with fds All replays the source stdio too', async () => {
    await createRestore(h as Harness, 'all', { checkpointName: 'plain', target: { newPod: {} }, fds: 'All' });
    const r = await until('restore finished', async () => {
      const x = await h.restores.get('default', 'all');
      return x.status?.phase === 'Ready' || x.status?.phase === 'Failed' ? x : undefined;
    });
    expect(reason(r, 'Ready')).toBe('True/Restored');
    expect(r.status?.fdsReplayed).toBe(Object.keys(table).length);
    expect(fdTable(await podProcess(r.status?.restoredPod ?? ''))).toEqual(table);
  });

  it('a Restore of the inherited fds into an existing pod that runs the launcher', async () => {
    await h.core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'waiting', namespace: 'default' },
        spec: {
          containers: [
            {
              name: 'app',
              image: 'host',
              command: ['python3', '-c', CLEAN_FDS, `exec ${HOLD} --timeout 600 -- sleep 1000`],
            },
          ],
        },
      },
    });
    await until('pod waiting running', async () => {
      const pod = await h.core.readNamespacedPod({ name: 'waiting', namespace: 'default' });
      return pod.status?.phase === 'Running' ? true : undefined;
    });
    await createRestore(h as Harness, 'inherited', {
      checkpointName: 'plain',
      target: { podName: 'waiting' },
      fds: 'Inherited',
    });
    const r = await until('restore finished', async () => {
      const x = await h.restores.get('default', 'inherited');
      return x.status?.phase === 'Ready' || x.status?.phase === 'Failed' ? x : undefined;
    });
    expect(reason(r, 'Ready')).toBe('True/Restored');
    const pid = await podProcess('waiting');
    // sh's redirections leave the fds inheritable: every fd of the table is replayed.
    expect(fdTable(pid)).toEqual(table);
  });

  it('a leaky pod gets LeakFree=False naming the holder outside', async () => {
    const fifo = join(tmp, 'fifo');
    execFileSync('mkfifo', [fifo]);
    hostProcs.push(spawn('sh', ['-c', `exec 5<>${fifo}; exec sleep 1000`], { stdio: 'ignore' }));
    await runningPod('leaky', `exec 3<>${fifo}; exec sleep 1000 `);
    await createCheckpoint(h as Harness, 'leaky', { podName: 'leaky' });
    const c = await checkpointDone('leaky');
    expect(reason(c, 'LeakFree')).toBe('False/LeaksFound');
    expect(reason(c, 'Ready')).toBe('False/LeaksFound');
    const message = c.status?.conditions?.find((x) => x.type === 'LeakFree')?.message ?? '';
    expect(message).toContain(fifo);
    expect(message).toMatch(/outside by pid \d+ \(sleep, host\) fd 5/);
    expect(c.status?.image).toBeUndefined();
  });

  it('afterCapture Stop leaves the pod frozen', async () => {
    await runningPod('stopped', 'exec sleep 1000');
    await createCheckpoint(h as Harness, 'stopped', { podName: 'stopped', afterCapture: 'Stop' });
    const c = await checkpointDone('stopped');
    expect(reason(c, 'Ready')).toBe('True/Captured');
    const pod = await h.core.readNamespacedPod({ name: 'stopped', namespace: 'default' });
    const cg = findPodCgroup(pod.metadata?.uid ?? '', []);
    const dir = cg.pod.v2Dir ?? '';
    expect(readFileSync(join(dir, 'cgroup.freeze'), 'utf8').trim()).toBe('1');
    writeFileSync(join(dir, 'cgroup.freeze'), '0');
  });

  it('deleting the Checkpoint deletes its image', async () => {
    await h.checkpoints.delete(await h.checkpoints.get('default', 'plain'));
    await until('checkpoint gone', async () => {
      try {
        await h.checkpoints.get('default', 'plain');
        return undefined;
      } catch (err) {
        return (err as { code?: number }).code === 404 ? true : undefined;
      }
    });
    expect(existsSync(image)).toBe(false);
  });
});
