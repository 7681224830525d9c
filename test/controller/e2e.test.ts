/**
 * End to end through kubectl: the local control plane with the controller and
 * an agent running for real (real engine), the CRDs and the samples applied
 * with kubectl, `kubectl wait --for=condition=Ready`, and the printer columns
 * of `kubectl get fdckpt`.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startControlPlane, type ControlPlane } from '../../src/local/controlplane.js';
import { KUBECTL, describeWithKubectl, hasKubectl } from '../support/kubectl.js';
import { startTestOperator } from './support.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const HOLD = join(repo, 'native/build/fdckpt-hold');

const describeKubectl = describeWithKubectl('e2e.test');

let cp: ControlPlane;
let work: string;

/** kubectl without blocking the event loop: the API server answers from this process. */
function kubectl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      KUBECTL,
      ['--kubeconfig', cp.kubeconfigPath, '--cache-dir', join(work, 'cache'), ...args],
      { encoding: 'utf8', timeout: 120_000, cwd: repo },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  if (!hasKubectl()) return;
  work = mkdtempSync(join(tmpdir(), 'fdckpt-e2e-'));
  cp = await startControlPlane({
    nodes: 1,
    startOperator: (info) =>
      startTestOperator(info, {
        launcher: HOLD,
        lease: { identity: 'e2e' },
      }),
  });
});

afterAll(async () => {
  await cp?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describeKubectl('kubectl against the operator', () => {
  it('applies the CRDs and samples, waits for Ready, and shows the printer columns', async () => {
    const crds = await kubectl('apply', '-f', 'crds/');
    expect(crds.stderr).toBe('');
    expect(crds.stdout).toContain(
      'customresourcedefinition.apiextensions.k8s.io/checkpoints.fdckpt.io created',
    );
    const apply = await kubectl(
      'apply',
      '-f',
      'deploy/samples/pod.yaml',
      '-f',
      'deploy/samples/checkpoint-dryrun.yaml',
    );
    expect(apply.stderr).toBe('');
    expect(apply.stdout).toContain('checkpoint.fdckpt.io/fd-demo-check created');
    const wait = await kubectl('wait', '--for=condition=Ready', 'checkpoint/fd-demo-check', '--timeout=90s');
    expect(wait.stderr).toBe('');
    expect(wait.stdout).toContain('condition met');
    // `fdckpt` is both the short name and the category: kubectl expands the category
    // (Checkpoints and Restores), prefixing names with their kind.
    const get = await kubectl('get', 'fdckpt');
    expect(get.code).toBe(0);
    const lines = get.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+POD\s+NODE\s+PHASE\s+FDS\s+LEAKS\s+AGE$/);
    expect(lines.find((l) => l.includes('fd-demo-check'))).toMatch(
      /^(checkpoint\.fdckpt\.io\/)?fd-demo-check\s+fd-demo\s+local-node-1\s+Ready\s+\d+\s+\d+\s+\S+$/,
    );
    const describeOut = await kubectl('describe', 'checkpoint', 'fd-demo-check');
    expect(describeOut.stdout).toContain('AssignedToNode');
  });

  it('checkpoints the sample pod and restores it into a new pod with the sample Restore', async () => {
    const apply = await kubectl('apply', '-f', 'deploy/samples/checkpoint.yaml');
    expect(apply.stderr).toBe('');
    const ready = await kubectl('wait', '--for=condition=Ready', 'checkpoint/fd-demo', '--timeout=90s');
    expect(ready.stdout).toContain('condition met');
    const restore = await kubectl('apply', '-f', 'deploy/samples/restore-newpod.yaml');
    expect(restore.stderr).toBe('');
    const restored = await kubectl('wait', '--for=condition=Ready', 'restore/fd-demo', '--timeout=90s');
    expect({ out: restored.stdout, err: restored.stderr }).toEqual({
      out: expect.stringContaining('condition met') as unknown,
      err: '',
    });
    const pod = await kubectl('get', 'pod', 'fd-demo-restored', '-o', 'jsonpath={.status.phase}');
    expect(pod.stdout).toBe('Running');
  });
});
