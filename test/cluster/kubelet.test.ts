/**
 * The process kubelet on real processes and real cgroups: pods bound to local nodes run as
 * host processes inside kubepods/<qos>/pod<UID>/<containerID>, report status, finish with
 * the right phase, and are stopped (processes gone, cgroups removed) when deleted.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api, CoreV1Api, Watch, type V1Pod } from '@kubernetes/client-node';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../../src/local/controlplane.js';
import { detectCgroupV2Root, podCgroupDir } from '../../src/local/kubelet/cgroup.js';
import { adminKubeConfig } from '../../src/local/cluster/cluster.js';
import { eventually, removeTree } from './support.js';

let cp: ControlPlane;
let core: CoreV1Api;
let v2root: string;
let root: string;
let work: string;

function pod(name: string, command: string[], extra: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    metadata: { name },
    spec: { containers: [{ name: 'main', image: 'ignored', command }], ...extra },
  };
}

async function podWhen(name: string, ok: (p: V1Pod) => boolean, what: string): Promise<V1Pod> {
  return eventually(async () => {
    const p = await core.readNamespacedPod({ namespace: 'default', name });
    return ok(p) ? p : undefined;
  }, `${name}: ${what}`);
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

beforeAll(async () => {
  v2root = detectCgroupV2Root();
  if (!existsSync(join(v2root, 'cgroup.procs'))) {
    const msg = `cgroup v2 is not usable at ${v2root}: the process kubelet needs it`;
    if (process.env['CI'] === 'true') throw new Error(msg);
  }
  // A private subtree, laid out exactly as the real one beneath it.
  root = join(v2root, `fdckpt-test-${process.pid}`);
  mkdirSync(root, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'fdckpt-kubelet-'));
  cp = await startControlPlane({ nodes: 2, dataDir: join(work, 'data'), cgroupRoot: root });
  core = adminKubeConfig(cp.cluster).makeApiClient(CoreV1Api);
});

afterAll(async () => {
  await cp?.stop();
  await removeTree(root);
  rmSync(work, { recursive: true, force: true });
});

describe('process kubelet', () => {
  it('registers Ready nodes with leases and storage directories', async () => {
    const nodes = await core.listNode();
    expect(nodes.items.map((n) => n.metadata!.name)).toEqual(['local-node-1', 'local-node-2']);
    for (const n of nodes.items) {
      expect(n.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      expect(existsSync(n.metadata!.annotations!['local.fdckpt.io/storage-dir']!)).toBe(true);
    }
    const leases = await adminKubeConfig(cp.cluster)
      .makeApiClient(CoordinationV1Api)
      .listNamespacedLease({ namespace: 'kube-node-lease' });
    expect(leases.items.map((l) => l.spec?.holderIdentity)).toEqual(['local-node-1', 'local-node-2']);
  });

  it('runs a pod as processes in its cgroup and stops them on delete', async () => {
    const out = join(work, 'env.txt');
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'runner' },
        spec: {
          nodeName: 'local-node-2',
          containers: [
            {
              name: 'main',
              image: 'ignored',
              command: ['/bin/sh', '-c', `echo "$GREETING $(pwd)" > ${out}; sleep 1000 & wait`],
              env: [{ name: 'GREETING', value: 'hello' }],
              workingDir: work,
            },
          ],
        },
      },
    });
    const p = await podWhen('runner', (x) => x.status?.phase === 'Running', 'Running');
    const cs = p.status!.containerStatuses![0]!;
    expect(cs.containerID).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
    expect(cs.ready).toBe(true);
    expect(cs.state?.running?.startedAt).toBeDefined();
    expect(p.status?.podIP).toMatch(/^10\.244\.2\.\d+$/);
    expect(p.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    const dir = join(
      podCgroupDir(root, 'BestEffort', p.metadata!.uid!),
      cs.containerID!.slice('containerd://'.length),
    );
    const pids = await eventually(() => {
      const list = readFileSync(join(dir, 'cgroup.procs'), 'utf8')
        .split('\n')
        .filter((l) => l)
        .map(Number);
      return list.length === 2 ? list : undefined;
    }, 'the shell and its sleep in the container cgroup');
    for (const pid of pids) {
      expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(`0::${dir.slice(v2root.length)}\n`);
      // Not a child of this process (a shim is in between), as on a node with containerd.
      const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      expect(ppid).not.toBe(process.pid);
      // Only stdio: nothing this process holds leaks into the pod.
      expect(readdirSync(`/proc/${pid}/fd`).map(Number).sort()).toEqual([0, 1, 2]);
    }
    expect(
      await eventually(() => (existsSync(out) ? readFileSync(out, 'utf8') : undefined), 'the env file'),
    ).toBe(`hello ${work}\n`);
    await core.deleteNamespacedPod({ namespace: 'default', name: 'runner' });
    await eventually(
      () =>
        core.readNamespacedPod({ namespace: 'default', name: 'runner' }).then(
          () => undefined,
          (e: { code?: number }) => (e.code === 404 ? true : undefined),
        ),
      'the pod to go',
    );
    await eventually(() => (pids.every((pid) => !alive(pid)) ? true : undefined), 'the processes to end');
    expect(existsSync(dir)).toBe(false);
    expect(existsSync(join(dir, '..'))).toBe(false);
  });

  it('builds the environment from values, fieldRefs, ConfigMaps and Secrets', async () => {
    await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'cfg' }, data: { mode: 'fast', extra: 'x' } },
    });
    await core.createNamespacedSecret({
      namespace: 'default',
      body: { metadata: { name: 'sec' }, data: { token: Buffer.from('s3cret').toString('base64') } },
    });
    const out = join(work, 'env-all.txt');
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'envy', labels: { app: 'envy' } },
        spec: {
          nodeName: 'local-node-1',
          restartPolicy: 'Never',
          containers: [
            {
              name: 'main',
              image: 'ignored',
              command: ['/bin/sh', '-c', `echo "$NODE $POD $APP $MODE $TOKEN $CFG_extra $GREETING" > ${out}`],
              envFrom: [{ configMapRef: { name: 'cfg' }, prefix: 'CFG_' }],
              env: [
                { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
                { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'mode' } } },
                { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'sec', key: 'token' } } },
                { name: 'GREETING', value: 'hi-$(POD)' },
              ],
            },
          ],
        },
      },
    });
    await podWhen('envy', (x) => x.status?.phase === 'Succeeded', 'Succeeded');
    expect(readFileSync(out, 'utf8')).toBe('local-node-1 envy envy fast s3cret x hi-envy\n');
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'noconf' },
        spec: {
          nodeName: 'local-node-1',
          containers: [
            {
              name: 'main',
              image: 'ignored',
              command: ['true'],
              env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'missing', key: 'k' } } }],
            },
          ],
        },
      },
    });
    const p = await podWhen(
      'noconf',
      (x) => x.status?.containerStatuses?.[0]?.state?.waiting !== undefined,
      'waiting',
    );
    expect(p.status?.phase).toBe('Pending');
    expect(p.status?.containerStatuses?.[0]?.state?.waiting).toMatchObject({
      reason: 'CreateContainerConfigError',
      message: 'configmap "missing" not found',
    });
    for (const name of ['envy', 'noconf']) await core.deleteNamespacedPod({ namespace: 'default', name });
  });

  it('reports Succeeded and Failed with exit codes when containers finish', async () => {
    await core.createNamespacedPod({
      namespace: 'default',
      body: pod('ok', ['/bin/true'], { nodeName: 'local-node-1', restartPolicy: 'Never' }),
    });
    await core.createNamespacedPod({
      namespace: 'default',
      body: pod('bad', ['/bin/sh', '-c', 'exit 3'], { nodeName: 'local-node-1', restartPolicy: 'Never' }),
    });
    await core.createNamespacedPod({
      namespace: 'default',
      body: pod('nocmd', ['/no/such/program'], { nodeName: 'local-node-1', restartPolicy: 'Never' }),
    });
    const ok = await podWhen('ok', (x) => x.status?.phase === 'Succeeded', 'Succeeded');
    expect(ok.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
    const bad = await podWhen('bad', (x) => x.status?.phase === 'Failed', 'Failed');
    expect(bad.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(3);
    const nocmd = await podWhen('nocmd', (x) => x.status?.phase === 'Failed', 'Failed');
    expect(nocmd.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(127);
    // Finished pods have no kubelet work left: they are deleted at once.
    for (const name of ['ok', 'bad', 'nocmd']) await core.deleteNamespacedPod({ namespace: 'default', name });
  });

  it('restarts a container under restartPolicy OnFailure with a new container ID, in CrashLoopBackOff meanwhile', async () => {
    const flag = join(work, 'second-run');
    // Every status the kubelet writes, through a watch: the back-off state is transient.
    const states: { phase?: string; waiting?: string }[] = [];
    const w = await new Watch(adminKubeConfig(cp.cluster)).watch(
      '/api/v1/namespaces/default/pods',
      { fieldSelector: 'metadata.name=flaky' },
      (_type: string, o: V1Pod) =>
        void states.push({
          phase: o.status?.phase,
          waiting: o.status?.containerStatuses?.[0]?.state?.waiting?.reason,
        }),
      () => undefined,
    );
    await core.createNamespacedPod({
      namespace: 'default',
      body: pod(
        'flaky',
        ['/bin/sh', '-c', `if [ -e ${flag} ]; then sleep 1000; else touch ${flag}; exit 1; fi`],
        { nodeName: 'local-node-1', restartPolicy: 'OnFailure' },
      ),
    });
    const p = await podWhen(
      'flaky',
      (x) =>
        x.status?.containerStatuses?.[0]?.restartCount === 1 &&
        x.status.phase === 'Running' &&
        x.status.containerStatuses[0].ready === true,
      'restarted',
    );
    const cs = p.status!.containerStatuses![0]!;
    expect(cs.lastState?.terminated?.exitCode).toBe(1);
    expect(cs.state?.running).toBeDefined();
    expect(cs.lastState?.terminated?.containerID).not.toBe(cs.containerID);
    w.abort();
    expect(states).toContainEqual({ phase: 'Running', waiting: 'CrashLoopBackOff' });
    await core.deleteNamespacedPod({ namespace: 'default', name: 'flaky' });
  });

  it('leaves no process or cgroup behind when pods are deleted while they start', async () => {
    const names = Array.from({ length: 8 }, (_, i) => `racer-${i}`);
    await Promise.all(
      names.map((name) =>
        core.createNamespacedPod({
          namespace: 'default',
          body: pod(name, ['sleep', '1000'], { nodeName: 'local-node-2' }),
        }),
      ),
    );
    await Promise.all(names.map((name) => core.deleteNamespacedPod({ namespace: 'default', name })));
    await eventually(
      async () =>
        (await core.listNamespacedPod({ namespace: 'default', labelSelector: '' })).items.some((p) =>
          names.includes(p.metadata!.name!),
        )
          ? undefined
          : true,
      'the pods to go',
    );
    const tier = join(root, 'kubepods', 'besteffort');
    await eventually(
      () => (existsSync(tier) && readdirSync(tier).some((d) => d.startsWith('pod')) ? undefined : true),
      'every pod cgroup to be removed',
    );
  });

  it('places Burstable and Guaranteed pods in their QoS tiers, and schedules unbound pods', async () => {
    const res = (limits: boolean): V1Pod['spec'] => ({
      containers: [
        {
          name: 'main',
          image: 'ignored',
          command: ['sleep', '1000'],
          resources: limits ? { limits: { cpu: '100m', memory: '64Mi' } } : { requests: { cpu: '100m' } },
        },
      ],
    });
    await core.createNamespacedPod({
      namespace: 'default',
      body: { metadata: { name: 'burst' }, spec: res(false) },
    });
    await core.createNamespacedPod({
      namespace: 'default',
      body: { metadata: { name: 'guar' }, spec: res(true) },
    });
    const burst = await podWhen('burst', (x) => x.status?.phase === 'Running', 'Running');
    const guar = await podWhen('guar', (x) => x.status?.phase === 'Running', 'Running');
    expect(burst.spec?.nodeName).toMatch(/^local-node-[12]$/);
    expect(burst.status?.qosClass).toBe('Burstable');
    expect(guar.status?.qosClass).toBe('Guaranteed');
    expect(existsSync(join(root, 'kubepods', 'burstable', `pod${burst.metadata!.uid}`))).toBe(true);
    expect(existsSync(join(root, 'kubepods', `pod${guar.metadata!.uid}`))).toBe(true);
    await core.deleteNamespacedPod({ namespace: 'default', name: 'burst' });
    await core.deleteNamespacedPod({ namespace: 'default', name: 'guar' });
    await eventually(
      () => (existsSync(join(root, 'kubepods', `pod${guar.metadata!.uid}`)) ? undefined : true),
      'the guaranteed pod cgroup to go',
    );
  });
});

describe('control plane data dir', () => {
  it('removes the data dir it made itself when it stops, and keeps one it was given', async () => {
    const own = await startControlPlane({ nodes: 1, apiOnly: true });
    expect(existsSync(join(own.dataDir, 'kubeconfig'))).toBe(true);
    await own.stop();
    expect(existsSync(own.dataDir)).toBe(false);

    const given = mkdtempSync(join(tmpdir(), 'fdckpt-given-'));
    try {
      const cp2 = await startControlPlane({ nodes: 1, apiOnly: true, dataDir: given });
      await cp2.stop();
      expect(existsSync(join(given, 'kubeconfig'))).toBe(true);
    } finally {
      rmSync(given, { recursive: true, force: true });
    }
  });
});
