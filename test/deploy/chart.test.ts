/**
 * The Helm chart (deploy/chart/fdckpt) against kustomize (deploy/): `helm lint`
 * passes; `helm template` renders the objects `kubectl kustomize deploy/` renders,
 * field for field, plus the controller's PodDisruptionBudget (and the ServiceMonitor
 * with its Services only when enabled); the one image value sets every container's
 * image in both, and the controller takes the launcher image from its own pod, so no
 * second place names it; the rendered chart applies server-side to a real
 * kube-apiserver, and `fdckpt controller` running as the chart's pod picks its image.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as yaml from 'js-yaml';
import type { V1Container, V1Pod, V1PodTemplateSpec } from '@kubernetes/client-node';
import { startCluster, type LocalCluster } from '../../src/local/cluster/cluster.js';
import { KUBECTL } from '../support/kubectl.js';
import { helmBinary } from '../support/helm.js';
import { endInput } from '../../src/local/child-input.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const chart = join(repo, 'deploy', 'chart', 'fdckpt');
const bin = join(repo, 'bin', 'fdckpt.js');
/** No registry host: the test only checks where the value goes. */
const IMAGE = { repository: 'team/fdckpt', tag: 'v9.9.9' };

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: { template?: V1PodTemplateSpec; selector?: unknown; [k: string]: unknown };
  [k: string]: unknown;
}

function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, cwd: repo }, (err, out, errOut) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${errOut}`)) : resolve(out),
    );
    endInput(child.stdin, input ?? '', (err) => reject(err));
  });
}

const docs = (text: string): Obj[] => (yaml.loadAll(text) as (Obj | null)[]).filter((o): o is Obj => !!o);
const key = (o: Obj): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

function helmTemplate(...sets: string[]): Promise<Obj[]> {
  const args = ['template', 'fdckpt', chart, '--include-crds', ...sets.flatMap((s) => ['--set', s])];
  return run(helmBinary(), args).then(docs);
}

/** `kubectl kustomize` of deploy/, or of an overlay on it with `images:` or deploy/'s `components` set. */
async function kustomize(image?: typeof IMAGE, components: string[] = []): Promise<Obj[]> {
  if (!image && components.length === 0) return docs(await run(KUBECTL, ['kustomize', join(repo, 'deploy')]));
  const dir = mkdtempSync(join(tmpdir(), 'fdckpt-overlay-'));
  try {
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      yaml.dump({
        // kustomize takes no absolute resource path.
        resources: [relative(dir, join(repo, 'deploy'))],
        ...(image ? { images: [{ name: 'fdckpt', newName: image.repository, newTag: image.tag }] } : {}),
        ...(components.length ? { components: components.map((c) => relative(dir, join(repo, 'deploy', c))) } : {}),
      }),
    );
    return docs(await run(KUBECTL, ['kustomize', '--load-restrictor', 'LoadRestrictionsNone', dir]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function containers(objects: Obj[]): V1Container[] {
  return objects.flatMap((o) => {
    const pod = o.spec?.template?.spec;
    return pod ? [...(pod.initContainers ?? []), ...pod.containers] : [];
  });
}

/** What helm adds that kustomize leaves to the API server's defaults. */
function withoutPullPolicy(objects: Obj[]): Obj[] {
  const copy = structuredClone(objects);
  for (const c of containers(copy)) delete c.imagePullPolicy;
  return copy;
}

describe('helm chart deploy/chart/fdckpt', () => {
  test('helm lint passes, with and without the ServiceMonitor', async () => {
    await run(helmBinary(), ['lint', '--strict', chart]);
    await run(helmBinary(), ['lint', '--strict', chart, '--set', 'serviceMonitor.enabled=true']);
  });

  test("renders kustomize's objects field for field, plus the PodDisruptionBudget", async () => {
    // kustomize's image is fdckpt:latest: the chart with that value must be the same.
    const helm = withoutPullPolicy(await helmTemplate('image.repository=fdckpt', 'image.tag=latest'));
    const kust = await kustomize();
    const helmKeys = helm.map(key).sort();
    expect(helmKeys).toEqual([...kust.map(key), 'PodDisruptionBudget/fdckpt-system/fdckpt-controller'].sort());
    const byKey = new Map(helm.map((o) => [key(o), o]));
    for (const o of kust) expect({ [key(o)]: byKey.get(key(o)) }).toEqual({ [key(o)]: o });
    expect(helm.filter((o) => o.kind === 'ServiceMonitor')).toEqual([]);
    const pdb = byKey.get('PodDisruptionBudget/fdckpt-system/fdckpt-controller')!;
    const deployment = byKey.get('Deployment/fdckpt-system/fdckpt-controller')!;
    expect(pdb.spec).toEqual({ minAvailable: 1, selector: deployment.spec?.selector });
  });

  test("webhookClientAuth.enabled is deploy/webhook-client-auth's component, field for field", async () => {
    await run(helmBinary(), ['lint', '--strict', chart, '--set', 'controller.webhookClientAuth.enabled=true']);
    const helm = withoutPullPolicy(
      await helmTemplate('image.repository=fdckpt', 'image.tag=latest', 'controller.webhookClientAuth.enabled=true'),
    );
    const kust = await kustomize(undefined, ['webhook-client-auth']);
    const deployment = (objects: Obj[]): Obj | undefined => objects.find((o) => o.kind === 'Deployment');
    expect(deployment(helm)).toEqual(deployment(kust));
    const pod = deployment(kust)!.spec!.template!.spec!;
    expect(pod.containers[0]?.args).toContain('--webhook-client-ca=/etc/fdckpt/webhook-client-ca/ca.crt');
    expect(pod.volumes).toEqual([
      {
        name: 'webhook-client-ca',
        configMap: { name: 'fdckpt-webhook-client-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] },
      },
    ]);
    // Names, when given, follow the CA flag.
    const named = await helmTemplate(
      'controller.webhookClientAuth.enabled=true',
      'controller.webhookClientAuth.allowedNames={a,b}',
    );
    expect(deployment(named)!.spec!.template!.spec!.containers[0]?.args?.slice(-2)).toEqual([
      '--webhook-client-ca=/etc/fdckpt/webhook-client-ca/ca.crt',
      '--webhook-client-names=a,b',
    ]);
    // Off by default in both.
    for (const objects of [await kustomize(), await helmTemplate()]) {
      expect(deployment(objects)!.spec!.template!.spec!.volumes).toBeUndefined();
      expect(deployment(objects)!.spec!.template!.spec!.containers[0]?.args?.join(' ')).not.toContain('client-ca');
    }
  });

  test('one image value: every container of both, and no FDCKPT_IMAGE to keep in step', async () => {
    const helm = await helmTemplate(`image.repository=${IMAGE.repository}`, `image.tag=${IMAGE.tag}`);
    const kust = await kustomize(IMAGE);
    const want = `${IMAGE.repository}:${IMAGE.tag}`;
    for (const objects of [helm, kust]) {
      expect(containers(objects).length).toBeGreaterThanOrEqual(2);
      for (const c of containers(objects)) {
        expect(c.image).toBe(want);
        expect((c.env ?? []).map((e) => e.name)).not.toContain('FDCKPT_IMAGE');
      }
    }
    const controller = containers(helm.filter((o) => o.kind === 'Deployment'))[0]!;
    expect(controller.name).toBe('controller');
    expect(controller.env?.filter((e) => e.name.startsWith('POD_')).map((e) => e.valueFrom?.fieldRef)).toEqual([
      { fieldPath: 'metadata.name' },
      { fieldPath: 'metadata.namespace' },
    ]);
  });

  test('the agent is system-node-critical; the log level value reaches both components', async () => {
    const helm = await helmTemplate('logLevel=debug');
    const agent = helm.find((o) => o.kind === 'DaemonSet')!;
    expect(agent.spec?.template?.spec?.priorityClassName).toBe('system-node-critical');
    for (const c of containers(helm)) expect(c.env).toContainEqual({ name: 'FDCKPT_LOG_LEVEL', value: 'debug' });
    // kustomize says info, the chart's default too.
    for (const objects of [await kustomize(), await helmTemplate()])
      for (const c of containers(objects)) expect(c.env).toContainEqual({ name: 'FDCKPT_LOG_LEVEL', value: 'info' });
  });

  test('serviceMonitor.enabled adds a ServiceMonitor whose Services select the pods', async () => {
    const helm = await helmTemplate('serviceMonitor.enabled=true', 'serviceMonitor.labels.release=prom');
    const [monitor, ...more] = helm.filter((o) => o.kind === 'ServiceMonitor');
    expect(more).toEqual([]);
    expect(monitor).toMatchObject({
      apiVersion: 'monitoring.coreos.com/v1',
      metadata: { name: 'fdckpt', namespace: 'fdckpt-system', labels: { release: 'prom' } },
      spec: { endpoints: [{ port: 'http', path: '/metrics' }] },
    });
    const selector = (monitor!.spec?.selector as { matchLabels: Record<string, string> }).matchLabels;
    const services = helm.filter(
      (o) => o.kind === 'Service' && Object.entries(selector).every(([k, v]) => o.metadata.labels?.[k] === v),
    );
    expect(services.map((s) => s.metadata.name).sort()).toEqual(['fdckpt-agent-metrics', 'fdckpt-controller-metrics']);
    for (const s of services) {
      const podLabels = helm.find(
        (o) => o.spec?.template && `${o.metadata.name}-metrics` === s.metadata.name,
      )!.spec!.template!.metadata!.labels!;
      const sel = s.spec?.['selector'] as Record<string, string>;
      expect(Object.entries(sel).every(([k, v]) => podLabels[k] === v)).toBe(true);
      // The pods' metrics port is named http (the controller's 8080, the agents' 8081).
      expect(s.spec?.['ports']).toEqual([expect.objectContaining({ name: 'http', targetPort: 'http' })]);
    }
  });
});

describe('the rendered chart on a real kube-apiserver', () => {
  let cluster: LocalCluster;
  let dir: string;
  const kubectl = (input: string | undefined, ...args: string[]): Promise<string> =>
    run(KUBECTL, ['--kubeconfig', cluster.adminKubeconfig, ...args], input);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fdckpt-chart-'));
    cluster = await startCluster({ dataDir: dir, controllerManager: false, scheduler: false });
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('applies server-side, CRDs first, and every object is there', async () => {
    const objects = await helmTemplate(`image.repository=${IMAGE.repository}`, `image.tag=${IMAGE.tag}`);
    const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition');
    const rest = objects.filter((o) => o.kind !== 'CustomResourceDefinition');
    expect(crds).toHaveLength(3);
    const dump = (list: Obj[]): string => list.map((o) => yaml.dump(o)).join('---\n');
    await kubectl(dump(crds), 'apply', '--server-side', '--field-manager', 'helm-test', '-f', '-');
    await kubectl(undefined, 'wait', '--for', 'condition=Established', '--timeout', '60s', 'crd', '--all');
    await kubectl(dump(rest), 'apply', '--server-side', '--field-manager', 'helm-test', '-f', '-');
    for (const o of objects) {
      const ns = o.metadata.namespace ? ['-n', o.metadata.namespace] : [];
      const type = `${o.kind}.${o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : ''}`.replace(/\.$/, '');
      const got = JSON.parse(await kubectl(undefined, 'get', ...ns, type, o.metadata.name, '-o', 'json')) as Obj;
      expect(key(got)).toBe(key(o));
    }
  }, 120_000);

  test("`fdckpt controller` in the chart's pod takes the launcher image from it", async () => {
    const objects = await helmTemplate(`image.repository=${IMAGE.repository}`, `image.tag=${IMAGE.tag}`);
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    // The Deployment's pod as its ReplicaSet would make it (no controller-manager here).
    const pod: V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'fdckpt-controller-test', namespace: 'fdckpt-system' },
      spec: { ...deployment.spec!.template!.spec!, nodeName: 'nowhere' },
    };
    await kubectl(JSON.stringify(pod), 'apply', '--server-side', '-f', '-');
    const child = spawn(
      process.execPath,
      [bin, 'controller', '--kubeconfig', cluster.adminKubeconfig, '--no-leader-elect', '--port', '0'],
      {
        env: {
          ...process.env,
          POD_NAME: 'fdckpt-controller-test',
          POD_NAMESPACE: 'fdckpt-system',
          FDCKPT_LOG_LEVEL: 'debug',
          FDCKPT_IMAGE: '',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    const configuration = await new Promise<Record<string, unknown>>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        const line = err.split('\n').find((l) => l.includes('"msg":"configuration"'));
        if (line) resolve(JSON.parse(line) as Record<string, unknown>);
      });
      child.on('exit', (code) => reject(new Error(`fdckpt controller exited (${code}): ${err}`)));
    }).finally(() => child.kill('SIGKILL'));
    expect(configuration['launcherImage']).toBe(`${IMAGE.repository}:${IMAGE.tag}`);
  }, 60_000);
});
