/**
 * Real nodes: two kubelets v1.35.4 over Debian's containerd and runc (src/local/node),
 * each in its own network and mount namespace, registered with the real control plane;
 * fdckpt's image (scripts/image/build.sh) imported into both; `kubectl apply -k` of
 * deploy/ as shipped with only the image overridden; then a Checkpoint of a real
 * container, checked against the container's process on the host.
 *
 * The API server listens at the kubernetes Service's address (10.0.0.1:443), so only one
 * such suite can run on a machine at a time: keep real-node tests in this file.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { MIGRATE_ON_DRAIN } from '../../src/api/index.js';
import { findPodCgroup, isFrozen, listTasks } from '../../src/agent/cgroup/index.js';
import { KUBECTL } from '../support/kubectl.js';
import { until } from '../support/until.js';
import { startRealCluster, type RealCluster } from './cluster.js';
import { demoPod, inheritable, programPid, stdioOf, suite } from './support.js';

const work = mkdtempSync('/tmp/fdr-');
let rc: RealCluster;
/** The demo's inheritable fds at capture. */
let saved: Record<string, string> = {};

const kubectl = (...args: string[]): string => rc.kubectl(...args);
const running = (name: string): Promise<V1Pod> => rc.running(name);

suite()('real nodes (kubelet + containerd + runc)', () => {
  beforeAll(async () => {
    rc = await startRealCluster(work);
  }, 900_000);

  afterAll(async () => {
    await rc?.stop();
    rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it('registers two Ready nodes on containerd, each at its own address', async () => {
    const list = await rc.core.listNode();
    const seen = list.items.map((n) => ({
      name: n.metadata?.name,
      runtime: n.status?.nodeInfo?.containerRuntimeVersion,
      kubelet: n.status?.nodeInfo?.kubeletVersion,
      ip: n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address,
    }));
    expect(seen).toEqual([
      { name: 'real-0', runtime: 'containerd://1.6.20', kubelet: 'v1.35.4', ip: '10.200.0.2' },
      { name: 'real-1', runtime: 'containerd://1.6.20', kubelet: 'v1.35.4', ip: '10.200.1.2' },
    ]);
  });

  it('runs a container whose logs and exec come from the kubelet', async () => {
    await rc.core.createNamespacedPod({ namespace: 'default', body: demoPod('plain', 'real-1') });
    const pod = await running('plain');
    expect(pod.status?.podIP).toMatch(/^10\.244\.1\.\d+$/);
    expect(pod.status?.containerStatuses?.[0]?.containerID).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
    await until('its first log lines', () =>
      Promise.resolve(/demo up 1\n/.test(kubectl('logs', 'plain')) ? true : undefined),
    );
    // In its own PID namespace the program is PID 1; exec sees its fds.
    const fds = kubectl(
      'exec',
      'plain',
      '--',
      'node',
      '-e',
      "console.log(require('fs').readdirSync('/proc/1/fd').length)",
    );
    expect(Number(fds.trim())).toBeGreaterThanOrEqual(3 + 5);
  });

  it('installs deploy/ as shipped: the controller and one agent per node run as pods', async () => {
    await rc.installDeploy();
    const pods = await rc.core.listNamespacedPod({ namespace: 'fdckpt-system' });
    const agents = pods.items.filter(
      (p) => p.metadata?.labels?.['app.kubernetes.io/name'] === 'fdckpt-agent',
    );
    expect(agents.map((p) => p.spec?.nodeName).sort()).toEqual(['real-0', 'real-1']);
    // Both controller replicas start at once and race for the webhook's CA bundle:
    // neither may crash on the other's write.
    const restarts = pods.items.map(
      (p) => `${p.metadata?.name}: ${p.status?.containerStatuses?.[0]?.restartCount}`,
    );
    expect(restarts.filter((r) => !r.endsWith(': 0'))).toEqual([]);
  }, 240_000);

  it('checkpoints a containerized pod found by its containerd cgroup: Ready, with the fds its process holds', async () => {
    await rc.core.createNamespacedPod({ namespace: 'default', body: demoPod('demo', 'real-0') });
    const pod = await running('demo');
    const custom = rc.custom;
    const ref = { group: 'fdckpt.io', version: 'v1alpha1', namespace: 'default', plural: 'checkpoints' };
    await custom.createNamespacedCustomObject({
      ...ref,
      body: {
        apiVersion: 'fdckpt.io/v1alpha1',
        kind: 'Checkpoint',
        metadata: { name: 'demo' },
        spec: { podName: 'demo', leakPolicy: 'Warn', afterCapture: 'LeaveRunning' },
      },
    });
    type Status = {
      phase?: string;
      conditions?: { type: string; status: string; message?: string }[];
      containers?: { name: string; pid: number; fds: number; processes: number }[];
      image?: { node: string; path: string; size: number };
      podUID?: string;
    };
    const status = await until(
      'Checkpoint demo Ready',
      async () => {
        const cp = (await custom.getNamespacedCustomObject({ ...ref, name: 'demo' })) as { status?: Status };
        if (cp.status?.phase === 'Failed')
          throw new Error(`Checkpoint failed: ${JSON.stringify(cp.status.conditions)}`);
        return cp.status?.phase === 'Ready' ? cp.status : undefined;
      },
      90_000,
    );
    expect(status.podUID).toBe(pod.metadata?.uid);
    expect(status.image?.node).toBe('real-0');
    const [c] = status.containers ?? [];
    expect(c?.name).toBe('demo');
    expect(c?.processes).toBe(1);
    // The PID is the host's (the agent runs with hostPID): a process in the container's
    // cgroup, laid out by the kubelet and containerd under the node's cgroup root.
    const cgroups = readFileSync(`/proc/${c!.pid}/cgroup`, 'utf8');
    expect(cgroups).toContain(`/fdckpt-node0/kubepods/besteffort/pod${pod.metadata?.uid}/`);
    expect(cgroups).toContain(pod.status?.containerStatuses?.[0]?.containerID?.replace('containerd://', ''));
    expect(c?.fds).toBe(readdirSync(`/proc/${c!.pid}/fd`).length);
    saved = inheritable(c!.pid);
    expect(Object.values(saved).filter((v) => v === '/etc/hostname@3')).toHaveLength(5);
    // The image is on node real-0's own /var/lib/fdckpt, not the host's.
    const onHost = join(rc.nodes[0]!.dataDir, relative('/var/lib/fdckpt', status.image!.path));
    expect(statSync(onHost).size).toBe(status.image?.size);
    // A capture with LeaveRunning leaves the container running and logging.
    const before = kubectl('logs', 'demo').split('\n').length;
    await until('more log lines after the capture', () =>
      Promise.resolve(kubectl('logs', 'demo').split('\n').length > before ? true : undefined),
    );
  }, 180_000);

  /** The restored program holds the saved table; its fds 0-2 and its logs are its own. */
  async function expectRestored(podName: string, node: string, sourceStdio: string[]): Promise<void> {
    const pod = await running(podName);
    expect(pod.spec?.nodeName).toBe(node);
    const pid = programPid(pod.metadata!.uid!, pod.status!.containerStatuses![0]!.containerID!);
    const got = inheritable(pid);
    for (const [fd, what] of Object.entries(saved)) expect(`${fd} ${got[fd]}`).toBe(`${fd} ${what}`);
    // Its stdout is its own container's pipe to its shim, not the source's.
    const stdio = stdioOf(pid);
    // (No stdin: fd 0 is /dev/null in both.)
    expect(stdio[0]).toBe('/dev/null');
    for (const fd of [1, 2]) {
      expect(stdio[fd]).toMatch(/^pipe:\[\d+\]$/);
      expect(stdio[fd]).not.toBe(sourceStdio[fd]);
    }
    await until(`kubectl logs ${podName} shows its own start`, () => {
      const logs = kubectl('logs', podName);
      if (!/demo up \d+\n(tick\n)+/.test(logs))
        throw new Error(`logs so far: ${JSON.stringify(logs.slice(-300))}`);
      return Promise.resolve(true);
    });
    // kubectl exec sees the replayed fds under the program's own /proc (its PID in the
    // container's PID namespace: the last of NSpid).
    const nspid = /^NSpid:(.*)$/m
      .exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!
      .trim()
      .split(/\s+/)
      .pop();
    const inside = kubectl(
      'exec',
      podName,
      '--',
      'node',
      '-e',
      `const fs = require('fs'); console.log(${JSON.stringify(Object.keys(saved))}.map((fd) => fs.readlinkSync('/proc/${nspid}/fd/' + fd)).join(' '))`,
    );
    expect(inside.trim()).toBe(
      Object.keys(saved)
        .map(() => '/etc/hostname')
        .join(' '),
    );
  }

  it('restores the checkpoint into a new container on the same node', async () => {
    const source = await running('demo');
    const sourcePid = programPid(source.metadata!.uid!, source.status!.containerStatuses![0]!.containerID!);
    await rc.create('restores', {
      kind: 'Restore',
      metadata: { name: 'demo' },
      spec: { checkpointName: 'demo', target: { newPod: { name: 'demo-restored' } } },
    });
    const status = await rc.ready('restores', 'demo');
    expect(status['restoredPod']).toBe('demo-restored');
    expect(status['fdsReplayed']).toBe(Object.keys(saved).length);
    await expectRestored('demo-restored', 'real-0', stdioOf(sourcePid));
  }, 180_000);

  /** Starts a demo pod, waits for its first line, saves its table; returns its stdio. */
  async function startDemo(body: V1Pod): Promise<string[]> {
    const name = body.metadata!.name!;
    await rc.core.createNamespacedPod({ namespace: 'default', body });
    const source = await running(name);
    await until(`${name} up`, () =>
      Promise.resolve(/demo up/.test(kubectl('logs', name)) ? true : undefined),
    );
    const pid = programPid(source.metadata!.uid!, source.status!.containerStatuses![0]!.containerID!);
    saved = inheritable(pid);
    return stdioOf(pid);
  }

  it('migrates a container to the other node: image sent between agents, source deleted', async () => {
    const sourceStdio = await startDemo(demoPod('mover', 'real-0'));
    expect(Object.keys(saved)).toHaveLength(5);
    await rc.create('migrations', {
      kind: 'Migration',
      metadata: { name: 'mover' },
      spec: { podName: 'mover', targetNode: 'real-1', leakPolicy: 'Warn' },
    });
    const status = await rc.ready('migrations', 'mover', 180_000);
    const target = String(status['targetPod']);
    await until('source pod deleted', async () =>
      (await rc.core.listNamespacedPod({ namespace: 'default' })).items.some(
        (p) => p.metadata?.name === 'mover',
      )
        ? undefined
        : true,
    );
    await expectRestored(target, 'real-1', sourceStdio);
  }, 240_000);

  it('kubectl drain moves an annotated pod held by its PodDisruptionBudget to the other node', async () => {
    const body = demoPod('drained', 'real-1');
    body.metadata = {
      ...body.metadata,
      labels: { app: 'drained' },
      annotations: { [MIGRATE_ON_DRAIN]: 'true' },
    };
    const sourceStdio = await startDemo(body);
    // The budget refuses the eviction: the pod leaves its node only by migration.
    kubectl('create', 'poddisruptionbudget', 'drained', '--selector=app=drained', '--max-unavailable=0');
    // drain cordons, retries the refused eviction, and ends once the Migration deleted the pod.
    const drain = await new Promise<{ status: number | null; out: string }>((done) => {
      const child = spawn(KUBECTL, [
        '--kubeconfig',
        rc.kubeconfig,
        'drain',
        'real-1',
        '--pod-selector=app=drained',
        '--ignore-daemonsets',
        // A bare pod has no controller to recreate it: drain refuses it without --force.
        '--force',
        '--timeout=150s',
      ]);
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.on('exit', (status) => done({ status, out }));
    });
    expect(`exit ${drain.status}: ${drain.out}`).toMatch(/^exit 0: /);
    const custom = rc.custom;
    const list = (await custom.listNamespacedCustomObject({
      group: 'fdckpt.io',
      version: 'v1alpha1',
      namespace: 'default',
      plural: 'migrations',
    })) as { items: { metadata: { name: string }; spec: { podName: string } }[] };
    const m = list.items.find((x) => x.spec.podName === 'drained');
    expect(m?.metadata.name).toMatch(/^drain-drained-/);
    const status = await rc.ready('migrations', m!.metadata.name, 60_000);
    expect(status['targetNode']).toBe('real-0');
    await expectRestored(String(status['targetPod']), 'real-0', sourceStdio);
    kubectl('uncordon', 'real-1');
  }, 240_000);

  it('the agent pod force-deleted while the pod is frozen for capture: the pod is thawed and keeps running', async () => {
    // About 18000 fds over four processes: the capture takes long enough to be cut off.
    const spawnChild =
      "spawn(process.execPath, ['-e', open + 'setInterval(() => {}, 1000)'], { stdio: 'inherit' })";
    const program = [
      "const { spawn } = require('child_process');",
      "const open = \"for (let i = 0; i < 4500; i++) require('fs').openSync('/dev/null', 'r');\";",
      `eval(open); for (let i = 0; i < 3; i++) ${spawnChild};`,
      "console.log('big up'); setInterval(() => {}, 1000);",
    ].join(' ');
    const body = demoPod('big', 'real-0');
    body.spec!.containers[0]!.command = ['node', '-e', program];
    await rc.core.createNamespacedPod({ namespace: 'default', body });
    const pod = await running('big');
    await until('big up', () => Promise.resolve(/big up/.test(kubectl('logs', 'big')) ? true : undefined));
    const cg = findPodCgroup(pod.metadata!.uid!).pod;
    const procsBefore = listTasks(cg).pids.length;
    // The program, its three children, and the pod's sandbox (pause).
    expect(procsBefore).toBe(5);
    await rc.create('checkpoints', {
      kind: 'Checkpoint',
      metadata: { name: 'big' },
      spec: { podName: 'big', leakPolicy: 'Warn', afterCapture: 'LeaveRunning' },
    });
    await until('the pod frozen for capture', () => Promise.resolve(isFrozen(cg) ? true : undefined), 60_000);
    const agents = await rc.core.listNamespacedPod({
      namespace: 'fdckpt-system',
      labelSelector: 'app.kubernetes.io/name=fdckpt-agent',
      fieldSelector: 'spec.nodeName=real-0',
    });
    const agent = agents.items[0]!;
    // SIGKILL first, so that the agent cannot thaw on its way out; then the pod goes, and
    // the DaemonSet's new agent (another container) must find the freeze in the node's
    // journal under /var/lib/fdckpt.
    process.kill(
      programPid(agent.metadata!.uid!, agent.status!.containerStatuses![0]!.containerID!),
      'SIGKILL',
    );
    kubectl(
      '-n',
      'fdckpt-system',
      'delete',
      'pod',
      agent.metadata!.name!,
      '--grace-period=0',
      '--force',
      '--wait=false',
    );
    await until('the pod thawed', () => Promise.resolve(isFrozen(cg) ? undefined : true), 90_000);
    expect(listTasks(cg).pids).toHaveLength(procsBefore);
    const p = await rc.core.readNamespacedPod({ name: 'big', namespace: 'default' });
    expect(p.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    // The DaemonSet's new agent takes the Checkpoint up again and ends it one way or the other.
    const done = await until(
      'Checkpoint big finished',
      async () => {
        const cp = (await rc.custom.getNamespacedCustomObject({
          group: 'fdckpt.io',
          version: 'v1alpha1',
          namespace: 'default',
          plural: 'checkpoints',
          name: 'big',
        })) as { status?: { phase?: string } };
        const phase = cp.status?.phase;
        return phase === 'Ready' || phase === 'Failed' ? phase : undefined;
      },
      150_000,
    );
    expect(['Ready', 'Failed']).toContain(done);
    expect(isFrozen(cg)).toBe(false);
  }, 300_000);
});
