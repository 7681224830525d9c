/**
 * apps/v1 on the local control plane, driven by the real kubectl and client-node: the
 * Deployment, ReplicaSet and garbage-collector controllers keep pods running (host
 * processes on a process kubelet), replace a deleted pod, scale through the scale
 * subresource, roll a new template out, and `kubectl delete deploy` cascades.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { AppsV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../../src/local/controlplane.js';
import { detectCgroupV2Root } from '../../src/local/kubelet/cgroup.js';
import { KUBECTL, describeWithKubectl, hasKubectl } from '../support/kubectl.js';
import { eventually, kubeConfigFor, removeTree, statusOf } from './support.js';

const describeKubectl = describeWithKubectl('apps.test');

let cp: ControlPlane;
let apps: AppsV1Api;
let core: CoreV1Api;
let work: string;
let root: string;

function kubectl(input: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      KUBECTL,
      ['--kubeconfig', cp.kubeconfigPath, '--cache-dir', join(work, 'cache'), ...args],
      { encoding: 'utf8', timeout: 60000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr}`)) : resolve(stdout),
    );
    child.stdin?.end(input);
  });
}

beforeAll(async () => {
  if (!hasKubectl()) return;
  root = join(detectCgroupV2Root(), `fdckpt-test-apps-${process.pid}`);
  mkdirSync(root, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'fdckpt-apps-'));
  cp = await startControlPlane({ nodes: 1, dataDir: join(work, 'data'), cgroupRoot: root });
  const kc = kubeConfigFor(cp.url);
  apps = kc.makeApiClient(AppsV1Api);
  core = kc.makeApiClient(CoreV1Api);
});

afterAll(async () => {
  await cp?.stop();
  if (root) await removeTree(root);
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The pods a Deployment's app label selects, not terminating. */
/** A Deployment running `sleep 1000`, for `kubectl apply -f -` (JSON on the wire). */
function deployment(name: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: default}
spec:
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: sleep, image: ignored, command: [sleep, '1000']}]
`;
}

async function livePods(app: string): Promise<V1Pod[]> {
  const pods = (await core.listNamespacedPod({ namespace: 'default', labelSelector: `app=${app}` })).items;
  return pods.filter((p) => !p.metadata?.deletionTimestamp);
}

async function runningPods(app: string, n: number): Promise<V1Pod[]> {
  return eventually(async () => {
    const pods = await livePods(app);
    return pods.length === n && pods.every((p) => p.status?.phase === 'Running') ? pods : undefined;
  }, `${n} running pods of ${app}`);
}

describeKubectl('apps/v1 on the local control plane', () => {
  it('kubectl create deployment (protobuf): a ReplicaSet with the hash label, pods it controls, status and columns', async () => {
    await kubectl('', 'create', 'deployment', 'web', '--image=ignored', '--', 'sleep', '1000');
    const [pod] = await runningPods('web', 1);
    const rsList = (await apps.listNamespacedReplicaSet({ namespace: 'default' })).items;
    const rs = rsList.find((r) => r.metadata?.ownerReferences?.[0]?.name === 'web')!;
    const hash = rs.metadata?.labels?.['pod-template-hash'];
    expect(hash).toMatch(/^[bcdfghjklmnpqrstvwxz2456789]+$/);
    expect(rs.metadata?.name).toBe(`web-${hash}`);
    expect(rs.spec?.selector.matchLabels).toEqual({ app: 'web', 'pod-template-hash': hash });
    expect(pod!.metadata?.name).toMatch(new RegExp(`^web-${hash}-[a-z0-9]{5}$`));
    expect(pod!.metadata?.ownerReferences).toEqual([
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        name: rs.metadata?.name,
        uid: rs.metadata?.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    const d = await eventually(async () => {
      const x = await apps.readNamespacedDeployment({ name: 'web', namespace: 'default' });
      return x.status?.availableReplicas === 1 ? x : undefined;
    }, 'deployment available');
    expect(d.status).toMatchObject({
      replicas: 1,
      updatedReplicas: 1,
      readyReplicas: 1,
      observedGeneration: 1,
    });
    expect(d.status?.conditions?.find((c) => c.type === 'Available')?.status).toBe('True');
    await kubectl('', 'rollout', 'status', 'deployment/web', '--timeout=60s');
    const table = await kubectl('', 'get', 'deploy,rs');
    expect(table).toMatch(/deployment\.apps\/web\s+1\/1\s+1\s+1\s+/);
    expect(table).toMatch(new RegExp(`replicaset\\.apps/web-${hash}\\s+1\\s+1\\s+1\\s+`));
    // kubectl create deployment names the container after the image.
    expect(await kubectl('', 'get', 'rs', '-o', 'wide')).toMatch(
      /ignored\s+ignored\s+app=web,pod-template-hash=/,
    );
    expect(pod!.spec?.containers[0]).toMatchObject({
      name: 'ignored',
      image: 'ignored',
      command: ['sleep', '1000'],
    });
  }, 60_000);

  it('replaces a deleted pod', async () => {
    const [before] = await runningPods('web', 1);
    await kubectl('', 'delete', 'pod', before!.metadata!.name!, '--wait=false');
    const [after] = await eventually(async () => {
      const pods = await livePods('web');
      return pods.length === 1 && pods[0]!.metadata?.name !== before!.metadata?.name ? pods : undefined;
    }, 'a replacement pod');
    expect(controllerUid(after!)).toBe(controllerUid(before!));
  }, 60_000);

  it('kubectl scale goes through the scale subresource, up and down', async () => {
    const scale = await apps.readNamespacedDeploymentScale({ name: 'web', namespace: 'default' });
    expect(scale.spec?.replicas).toBe(1);
    expect(scale.status?.selector).toBe('app=web');
    await kubectl('', 'scale', 'deployment/web', '--replicas=3');
    await runningPods('web', 3);
    await kubectl('', 'scale', 'deployment/web', '--replicas=1');
    await runningPods('web', 1);
    await expect(
      apps.replaceNamespacedDeploymentScale({
        name: 'web',
        namespace: 'default',
        body: { metadata: { name: 'web' }, spec: { replicas: -1 } },
      }),
    ).rejects.toMatchObject({ code: 422 });
  }, 90_000);

  it('a new template gets a new ReplicaSet; the old one goes to 0', async () => {
    const [old] = await runningPods('web', 1);
    await kubectl('', 'set', 'env', 'deployment/web', 'COLOR=blue');
    const [pod] = await eventually(async () => {
      const pods = await runningPods('web', 1);
      return controllerUid(pods[0]!) !== controllerUid(old!) ? pods : undefined;
    }, 'a pod of the new ReplicaSet');
    expect(pod!.spec?.containers[0]?.env).toEqual([{ name: 'COLOR', value: 'blue' }]);
    const rss = (await apps.listNamespacedReplicaSet({ namespace: 'default' })).items;
    expect(rss.map((r) => r.spec?.replicas).sort()).toEqual([0, 1]);
    // Two scales and a template change since creation: generation 4, observed.
    await eventually(async () => {
      const d = await apps.readNamespacedDeployment({ name: 'web', namespace: 'default' });
      return d.status?.observedGeneration === 4 && d.metadata?.generation === 4 ? d : undefined;
    }, 'generation 4 observed');
  }, 90_000);

  it('a protobuf Deployment with a field the double does not decode is refused with 415, naming it', async () => {
    // runtime.Unknown{typeMeta{apps/v1, Deployment}, raw: Deployment{spec{template{spec{activeDeadlineSeconds: 30}}}}}
    const msg = (num: number, body: Buffer): Buffer =>
      Buffer.concat([Buffer.from([(num << 3) | 2, body.length]), body]);
    const str = (num: number, s: string): Buffer => msg(num, Buffer.from(s));
    const podSpec = Buffer.from([(5 << 3) | 0, 30]);
    const raw = msg(2, msg(3, msg(2, podSpec)));
    const body = Buffer.concat([
      Buffer.from('k8s\0'),
      msg(1, Buffer.concat([str(1, 'apps/v1'), str(2, 'Deployment')])),
      msg(2, raw),
    ]);
    const res = await fetch(`${cp.url}/apis/apps/v1/namespaces/default/deployments`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/vnd.kubernetes.protobuf' },
      body,
    });
    expect(res.status).toBe(415);
    expect(((await res.json()) as { message: string }).message).toContain(
      'protobuf field 5 of PodSpec (at spec.template.spec) is not decoded',
    );
  });

  it('rejects a selector that does not select the template', async () => {
    const err = await apps
      .createNamespacedDeployment({
        namespace: 'default',
        body: {
          metadata: { name: 'bad' },
          spec: {
            selector: { matchLabels: { app: 'x' } },
            template: {
              metadata: { labels: { app: 'y' } },
              spec: { containers: [{ name: 'c', image: 'i', command: ['true'] }] },
            },
          },
        },
      })
      .catch((e: unknown) => e);
    expect(statusOf(err).details?.causes?.[0]).toMatchObject({
      field: 'spec.template.metadata.labels',
      reason: 'FieldValueInvalid',
    });
  });

  it('kubectl delete deploy cascades to its ReplicaSets and pods; --cascade=orphan keeps them', async () => {
    await kubectl('', 'delete', 'deployment', 'web');
    await eventually(
      async () =>
        (await apps.listNamespacedReplicaSet({ namespace: 'default' })).items.length === 0 &&
        (await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=web' })).items.length === 0
          ? true
          : undefined,
      'the ReplicaSets and pods gone',
    );
    await kubectl(deployment('kept'), 'apply', '-f', '-');
    const [pod] = await runningPods('kept', 1);
    await kubectl('', 'delete', 'deployment', 'kept', '--cascade=orphan');
    const rs = (await apps.listNamespacedReplicaSet({ namespace: 'default' })).items;
    expect(rs).toHaveLength(1);
    expect(rs[0]!.metadata?.ownerReferences).toBeUndefined();
    // Still there and still its ReplicaSet's (the ReplicaSet itself was orphaned, not deleted).
    const again = await core.readNamespacedPod({ name: pod!.metadata!.name!, namespace: 'default' });
    expect(again.metadata?.deletionTimestamp).toBeUndefined();
    await kubectl('', 'delete', 'rs', rs[0]!.metadata!.name!);
    await eventually(
      async () =>
        (await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=kept' })).items.length === 0
          ? true
          : undefined,
      'the orphaned ReplicaSet and its pod gone',
    );
  }, 90_000);

  it('the garbage collector deletes a pod created for a ReplicaSet that is gone', async () => {
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: {
          name: 'dangling',
          ownerReferences: [
            { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'nope', uid: 'f00', controller: true },
          ],
        },
        spec: { containers: [{ name: 'c', image: 'i', command: ['sleep', '1000'] }] },
      },
    });
    await eventually(
      async () =>
        (await core.readNamespacedPod({ name: 'dangling', namespace: 'default' }).catch(() => undefined)) ===
        undefined
          ? true
          : undefined,
      'the dangling pod gone',
    );
  }, 60_000);
});

function controllerUid(p: V1Pod): string | undefined {
  return p.metadata?.ownerReferences?.find((r) => r.controller)?.uid;
}
