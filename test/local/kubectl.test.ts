/**
 * The local control plane driven by the real kubectl (KUBECTL, else the one on PATH; CI
 * installs Debian's with scripts/ensure-kubectl.sh): apply a CRD directory and a custom
 * resource, get with printer columns, wait for a condition, apply again, delete; and a pod
 * applied with kubectl runs as host processes in its cgroup and stops on delete.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startControlPlane, type ControlPlane } from '../../src/local/controlplane.js';
import { detectCgroupV2Root, podCgroupDir } from '../../src/local/kubelet/cgroup.js';
import { eventually, kubeConfigFor } from './support.js';
import { KUBECTL, describeWithKubectl, hasKubectl } from '../support/kubectl.js';

const fixtures = fileURLToPath(new URL('../fixtures/local/', import.meta.url));
const describeKubectl = describeWithKubectl('kubectl.test');

let cp: ControlPlane;
let work: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs kubectl without blocking: the API server answers from this same process. */
function kubectlWithInput(input: string | undefined, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      KUBECTL,
      ['--kubeconfig', cp.kubeconfigPath, '--cache-dir', join(work, 'cache'), ...args],
      { encoding: 'utf8', timeout: 60000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(input ?? '');
  });
}

function kubectl(...args: string[]): Promise<Run> {
  return kubectlWithInput(undefined, ...args);
}

async function ok(...args: string[]): Promise<string> {
  const r = await kubectl(...args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

beforeAll(async () => {
  if (!hasKubectl()) return;
  work = mkdtempSync(join(tmpdir(), 'fdckpt-kubectl-'));
  // The default cgroup root: this test checks the real node layout.
  cp = await startControlPlane({ nodes: 1, dataDir: join(work, 'data') });
});

afterAll(async () => {
  await cp?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describeKubectl('kubectl against the local control plane', () => {
  it('applies a CRD directory and a custom resource, shows printer columns, waits for a condition, deletes', async () => {
    expect(await ok('apply', '-f', join(fixtures, 'crds'))).toContain(
      'customresourcedefinition.apiextensions.k8s.io/widgets.test.fdckpt.io created',
    );
    expect(
      await ok('wait', '--for=condition=Established', 'crd/widgets.test.fdckpt.io', '--timeout=30s'),
    ).toContain('condition met');
    expect(await ok('apply', '-f', join(fixtures, 'widget.yaml'))).toContain(
      'widget.test.fdckpt.io/w1 created',
    );
    const table = (await ok('get', 'widgets')).split('\n');
    expect(table[0]).toMatch(/^NAME\s+SIZE\s+PHASE\s+READY\s+AGE$/);
    expect(table[1]).toMatch(/^w1\s+3\s+\d+s$/);
    expect(await ok('get', 'wdg', '-o', 'name')).toBe('widget.test.fdckpt.io/w1\n');
    expect(await ok('get', 'fdckpt-test', '-o', 'name')).toBe('widget.test.fdckpt.io/w1\n');

    // Something (the controller, later) marks it Ready while kubectl waits.
    const waiting = kubectl('wait', '--for=condition=Ready', 'widget/w1', '--timeout=30s');
    const custom = kubeConfigFor(cp.url).makeApiClient(CustomObjectsApi);
    const key = {
      group: 'test.fdckpt.io',
      version: 'v1alpha1',
      namespace: 'default',
      plural: 'widgets',
      name: 'w1',
    };
    const w = (await custom.getNamespacedCustomObject(key)) as Record<string, unknown>;
    await custom.replaceNamespacedCustomObjectStatus({
      ...key,
      body: {
        ...w,
        status: {
          phase: 'Ready',
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'Done',
              message: 'ok',
              lastTransitionTime: new Date().toISOString(),
            },
          ],
        },
      },
    });
    const waited = await waiting;
    expect(waited.stderr).toBe('');
    expect(waited.stdout).toContain('widget.test.fdckpt.io/w1 condition met');
    expect((await ok('get', 'widget', 'w1')).split('\n')[1]).toMatch(/^w1\s+3\s+Ready\s+True\s+\d+s$/);

    const bad = await kubectl('apply', '-f', join(fixtures, 'widget-bad.yaml'));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('spec.color: Unsupported value: "purple"');
    expect(bad.stderr).toContain('spec.size: Invalid value: 30');

    // A second apply is a three-way merge patch; only a spec change bumps generation.
    const changed = readFileSync(join(fixtures, 'widget.yaml'), 'utf8').replace('size: 3', 'size: 4');
    const again = await kubectlWithInput(changed, 'apply', '-f', '-');
    expect(again.stdout).toContain('widget.test.fdckpt.io/w1 configured');
    expect(
      await ok('get', 'widget', 'w1', '-o', 'jsonpath={.spec.size} {.metadata.generation} {.status.phase}'),
    ).toBe('4 2 Ready');

    // Server-side apply is approximated (no field ownership) but kubectl's flow works.
    const ssa = await kubectlWithInput(
      changed.replace('size: 4', 'size: 5'),
      'apply',
      '--server-side',
      '-f',
      '-',
    );
    expect(ssa.stdout).toContain('widget.test.fdckpt.io/w1 serverside-applied');
    expect(await ok('get', 'widget', 'w1', '-o', 'jsonpath={.spec.size}')).toBe('5');

    expect(await ok('delete', 'widget', 'w1')).toContain('"w1" deleted');
    expect((await kubectl('get', 'widget', 'w1')).stderr).toContain('NotFound');
  });

  it('runs a pod applied with kubectl as processes in its cgroup, and stops them on delete', async () => {
    expect(await ok('apply', '-f', join(fixtures, 'sleeper-pod.yaml'))).toContain('pod/sleeper created');
    expect(await ok('wait', '--for=condition=Ready', 'pod/sleeper', '--timeout=30s')).toContain(
      'condition met',
    );
    const [uid, cid, node, qos] = (
      await ok(
        'get',
        'pod',
        'sleeper',
        '-o',
        'jsonpath={.metadata.uid} {.status.containerStatuses[0].containerID} {.spec.nodeName} {.status.qosClass}',
      )
    ).split(' ');
    expect(node).toBe('local-node-1');
    expect(qos).toBe('BestEffort');
    expect(cid).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
    const v2 = detectCgroupV2Root();
    const dir = join(podCgroupDir(v2, 'BestEffort', uid!), cid!.slice('containerd://'.length));
    const pids = await eventually(() => {
      const list = readFileSync(join(dir, 'cgroup.procs'), 'utf8')
        .split('\n')
        .filter((l) => l)
        .map(Number);
      return list.length === 2 ? list : undefined;
    }, 'sh and sleep in the container cgroup');
    for (const pid of pids)
      expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(
        `0::/kubepods/besteffort/pod${uid}/${cid!.slice(13)}\n`,
      );
    expect((await ok('get', 'pods')).split('\n')[1]).toMatch(/^sleeper\s+1\/1\s+Running\s+0\s+\d+s$/);

    // A second apply of a built-in is a strategic merge patch.
    const relabelled = readFileSync(join(fixtures, 'sleeper-pod.yaml'), 'utf8').replace(
      'app: sleeper',
      'app: sleepy',
    );
    expect((await kubectlWithInput(relabelled, 'apply', '-f', '-')).stdout).toContain(
      'pod/sleeper configured',
    );
    expect(await ok('get', 'pods', '-l', 'app=sleepy', '-o', 'name')).toBe('pod/sleeper\n');

    // pods/log is served from the log file the process kubelet writes.
    const hello = await kubectlWithInput(
      undefined,
      'run',
      'hello',
      '--image=ignored',
      '--restart=Never',
      '--command',
      '--',
      'sh',
      '-c',
      'echo hello from $HOSTNAME',
    );
    expect(hello.stdout).toContain('pod/hello created');
    await eventually(
      async () =>
        (await ok('get', 'pod', 'hello', '-o', 'jsonpath={.status.phase}')) === 'Succeeded'
          ? true
          : undefined,
      'hello to finish',
    );
    expect(await ok('logs', 'hello')).toBe('hello from hello\n');
    expect((await ok('get', 'pod', 'hello')).split('\n')[1]).toMatch(/^hello\s+0\/1\s+Completed\s+0\s+\d+s$/);
    await ok('delete', 'pod', 'hello');
    // logs -f streams until the container ends.
    await ok(
      'run',
      'ticker',
      '--image=ignored',
      '--restart=Never',
      '--command',
      '--',
      'sh',
      '-c',
      'for i in 1 2 3; do echo tick $i; sleep 0.2; done',
    );
    await eventually(
      async () =>
        /^(Running|Succeeded)$/.test(await ok('get', 'pod', 'ticker', '-o', 'jsonpath={.status.phase}'))
          ? true
          : undefined,
      'ticker to start',
    );
    expect(await ok('logs', '-f', 'ticker')).toBe('tick 1\ntick 2\ntick 3\n');
    await ok('delete', 'pod', 'ticker');

    expect(await ok('delete', 'pod', 'sleeper')).toContain('"sleeper" deleted');
    await eventually(() => (pids.every((p) => !alive(p)) ? true : undefined), 'the pod processes to end');
    expect(existsSync(join(dir, '..'))).toBe(false);
  });

  it('cordons, uncordons and drains a node (drain sends protobuf DeleteOptions)', async () => {
    // No authorization in the harness: access reviews say yes.
    expect(await ok('auth', 'can-i', 'delete', 'nodes')).toBe('yes\n');
    expect(await ok('cordon', 'local-node-1')).toContain('cordoned');
    expect(await ok('run', 'parked', '--image=ignored', '--command', '--', 'sleep', '1000')).toContain(
      'pod/parked created',
    );
    expect(await ok('get', 'pod', 'parked', '-o', 'jsonpath={.status.phase}/{.spec.nodeName}')).toBe(
      'Pending/',
    );
    expect(await ok('uncordon', 'local-node-1')).toContain('uncordoned');
    expect(await ok('wait', '--for=condition=Ready', 'pod/parked', '--timeout=30s')).toContain(
      'condition met',
    );
    const drained = await kubectl('drain', 'local-node-1', '--force', '--timeout=30s');
    // kubectl 1.20 (Debian's) words its last line "node/… deleted" after deleting pods; newer ones say "drained".
    expect(drained.code).toBe(0);
    expect(drained.stdout).toMatch(/node\/local-node-1 (drained|deleted)/);
    expect(await ok('get', 'node', 'local-node-1', '-o', 'jsonpath={.spec.unschedulable}')).toBe('true');
    expect((await kubectl('get', 'pod', 'parked')).stderr).toContain('NotFound');
    expect(await ok('uncordon', 'local-node-1')).toContain('uncordoned');
  });

  it('talks TLS to a control plane started with tls, verifying its certificate', async () => {
    const tls = await startControlPlane({ nodes: 0, tls: true, dataDir: join(work, 'tls') });
    try {
      expect(readFileSync(tls.kubeconfigPath, 'utf8')).toContain('certificate-authority-data');
      expect(tls.url).toMatch(/^https:/);
      const r = await new Promise<Run>((resolve) => {
        execFile(
          KUBECTL,
          ['--kubeconfig', tls.kubeconfigPath, '--cache-dir', join(work, 'cache'), 'get', 'ns', '-o', 'name'],
          { encoding: 'utf8' },
          (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
        );
      });
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain('namespace/default');
      const nodes = await kubeConfigFor(tls.url, tls.api.caCert).makeApiClient(CoreV1Api).listNode();
      expect(nodes.items).toEqual([]);
    } finally {
      await tls.stop();
    }
  });
});
