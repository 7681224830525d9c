/**
 * The real control plane the Kubernetes-facing tests run against: etcd, kube-apiserver,
 * kube-controller-manager and kube-scheduler built from Go modules (scripts/kube/build.sh),
 * driven with the kubectl built beside them. Each expectation is what any cluster does.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeBinary } from '../../src/local/cluster/binaries.js';
import { startCluster, type LocalCluster } from '../../src/local/cluster/cluster.js';

let cluster: LocalCluster;
let dir: string;

function kubectl(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(kubeBinary('kubectl'), ['--kubeconfig', cluster.adminKubeconfig, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fdckpt-cluster-'));
  cluster = await startCluster({ dataDir: dir });
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the local cluster', () => {
  test('serves the pinned version', () => {
    const r = kubectl('version', '-o', 'json');
    expect(r.status).toBe(0);
    const v = JSON.parse(r.out.slice(r.out.indexOf('{'))) as { serverVersion?: { gitVersion?: string } };
    expect(v.serverVersion?.gitVersion).toBe('v1.35.4');
  });

  test('kubectl create namespace, configmap and serviceaccount work as on any cluster', () => {
    expect(kubectl('create', 'namespace', 'x').status).toBe(0);
    expect(kubectl('-n', 'x', 'create', 'configmap', 'c', '--from-literal=a=b').status).toBe(0);
    expect(kubectl('-n', 'x', 'create', 'serviceaccount', 's').status).toBe(0);
    const r = kubectl('-n', 'x', 'get', 'configmap', 'c', '-o', 'jsonpath={.data.a}');
    expect(r.out).toBe('b');
  });

  test('authorizes with RBAC: an unbound ServiceAccount may not list pods', () => {
    const r = kubectl('auth', 'can-i', 'list', 'pods', '--as=system:serviceaccount:x:s');
    expect(r.out.trim()).toBe('no');
    expect(kubectl('auth', 'can-i', 'list', 'pods').out.trim()).toBe('yes');
  });

  test('a ServiceAccount token kubeconfig authenticates as that account', async () => {
    const path = await cluster.serviceAccountKubeconfig('x', 's', join(dir, 's.kubeconfig'));
    const r = spawnSync(
      kubeBinary('kubectl'),
      ['--kubeconfig', path, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'],
      {
        encoding: 'utf8',
      },
    );
    expect(r.stdout).toBe('system:serviceaccount:x:s');
  });
});
