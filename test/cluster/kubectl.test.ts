/**
 * The local control plane — real etcd, kube-apiserver, kube-controller-manager and
 * kube-scheduler with process kubelets — driven by the kubectl built with them: fdckpt's
 * CRDs as any cluster serves them (explain, CEL immutability, server-side apply
 * conflicts), deploy/'s RBAC as the API server enforces it, and pods applied with kubectl
 * running as host processes in their cgroups, with `kubectl logs` proxied by the API
 * server to the process kubelet.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startControlPlane, type ControlPlane } from '../../src/local/controlplane.js';
import { detectCgroupV2Root, podCgroupDir } from '../../src/local/kubelet/cgroup.js';
import { installOperator } from '../../src/local/cluster/install.js';
import { eventually } from './support.js';
import { KUBECTL, describeWithKubectl, hasKubectl } from '../support/kubectl.js';
import { endInput } from '../../src/local/child-input.js';

const fixtures = fileURLToPath(new URL('../fixtures/cluster/', import.meta.url));
const repo = fileURLToPath(new URL('../../', import.meta.url));
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
      { encoding: 'utf8', timeout: 60000, cwd: repo },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    endInput(child.stdin, input ?? '', (e) => resolve({ code: 1, stdout: '', stderr: String(e) }));
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
  it("serves fdckpt's CRDs as any cluster does: explain, CEL immutability, server-side apply conflicts", async () => {
    await installOperator(cp.cluster, cp.kubeconfigPath);
    // The API server publishes a new CRD's OpenAPI a moment after it is Established.
    const explain = await eventually(async () => {
      const r = await kubectl('explain', 'checkpoint.spec');
      return r.code === 0 ? r.stdout : undefined;
    }, 'kubectl explain checkpoint.spec');
    expect(explain).toContain('podName');
    expect(explain).toContain('leakPolicy');
    expect(await ok('apply', '-f', 'deploy/samples/checkpoint.yaml')).toContain(
      'checkpoint.fdckpt.io/fd-demo created',
    );
    // spec is immutable (x-kubernetes-validations self == oldSelf), enforced by the API server's CEL.
    const patch = await kubectl(
      'patch',
      'checkpoint',
      'fd-demo',
      '--type=merge',
      '-p',
      '{"spec":{"leakPolicy":"Warn"}}',
    );
    expect(patch.code).not.toBe(0);
    expect(patch.stderr).toContain('spec is immutable; create a new Checkpoint');
    // A schema violation names the field.
    const bad = await kubectlWithInput(
      'apiVersion: fdckpt.io/v1alpha1\nkind: Checkpoint\nmetadata: {name: bad}\nspec: {podName: p, leakPolicy: Sometimes}\n',
      'apply',
      '-f',
      '-',
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('spec.leakPolicy: Unsupported value: "Sometimes"');
    // Server-side apply tracks field managers: another manager changing a label conflicts.
    const labelled = (value: string): string =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: owned, labels: {tier: ${value}}}\n`;
    await kubectlWithInput(labelled('a'), 'apply', '--server-side', '--field-manager=first', '-f', '-');
    const conflict = await kubectlWithInput(
      labelled('b'),
      'apply',
      '--server-side',
      '--field-manager=second',
      '-f',
      '-',
    );
    expect(conflict.code).not.toBe(0);
    expect(conflict.stderr).toContain('conflict');
    expect(await ok('get', 'configmap', 'owned', '-o', 'jsonpath={.metadata.managedFields[0].manager}')).toBe(
      'first',
    );
  });

  it("enforces deploy/'s RBAC: the controller watches pods, agents read no Secret at all", async () => {
    await installOperator(cp.cluster, cp.kubeconfigPath);
    const can = async (as: string, ...what: string[]): Promise<string> =>
      (
        await kubectl('auth', 'can-i', ...what, `--as=system:serviceaccount:fdckpt-system:${as}`)
      ).stdout.trim();
    expect(await can('fdckpt-controller', 'watch', 'pods')).toBe('yes');
    expect(await can('fdckpt-controller', 'create', 'pods', '-n', 'default')).toBe('yes');
    expect(await can('fdckpt-agent', 'get', 'secrets', '-n', 'default')).toBe('no');
    expect(await can('fdckpt-agent', 'get', 'secrets', '-n', 'kube-system')).toBe('no');
    // Transfers need none: the fetching agent shows its own node-bound token, which the
    // source agent checks with the API server.
    expect(await can('fdckpt-agent', 'get', 'secrets', '-n', 'fdckpt-system')).toBe('no');
    expect(await can('fdckpt-agent', 'list', 'secrets', '--all-namespaces')).toBe('no');
    expect(await can('fdckpt-agent', 'create', 'tokenreviews.authentication.k8s.io')).toBe('yes');
    expect(await can('fdckpt-controller', 'get', 'secrets', '-n', 'default')).toBe('no');
    expect(await can('fdckpt-agent', 'delete', 'pods', '-n', 'default')).toBe('no');
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

    // pods/log: the API server proxies it to the process kubelet, which serves its log files.
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

  it('cordons, uncordons and drains a node', async () => {
    // The admin kubeconfig is system:masters.
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
    expect(drained.code).toBe(0);
    expect(drained.stdout).toContain('node/local-node-1 drained');
    expect(await ok('get', 'node', 'local-node-1', '-o', 'jsonpath={.spec.unschedulable}')).toBe('true');
    expect((await kubectl('get', 'pod', 'parked')).stderr).toContain('NotFound');
    expect(await ok('uncordon', 'local-node-1')).toContain('uncordoned');
  });
});
