/**
 * The API double against the real @kubernetes/client-node: the semantics the operator
 * depends on (resourceVersion, 409, 410 and relist, /status, generation, finalizers,
 * selectors, schema validation) seen through the same client code as a real cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  Watch,
  KubernetesObjectApi,
  loadYaml,
  makeInformer,
  type V1CustomResourceDefinition,
  setHeaderOptions,
  type KubeConfig,
  type V1ConfigMap,
  type V1Pod,
} from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { startApiServer, type ApiServer } from '../../src/local/apiserver/server.js';
import { eventually, kubeConfigFor, statusOf } from './support.js';

const G = 'test.fdckpt.io';
const V = 'v1alpha1';
type Widget = {
  metadata: {
    name: string;
    resourceVersion: string;
    generation: number;
    finalizers?: string[];
    deletionTimestamp?: string;
    uid: string;
  };
  spec: Record<string, unknown>;
  status?: Record<string, unknown>;
};

let api: ApiServer;
let kc: KubeConfig;
let core: CoreV1Api;
let custom: CustomObjectsApi;

function widget(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: `${G}/${V}`,
    kind: 'Widget',
    metadata: { name, ...extra },
    spec: { size: 2, color: 'green' },
  };
}

async function getWidget(name: string): Promise<Widget> {
  return (await custom.getNamespacedCustomObject({
    group: G,
    version: V,
    namespace: 'default',
    plural: 'widgets',
    name,
  })) as Widget;
}

beforeAll(async () => {
  api = await startApiServer({ bookmarkIntervalMs: 200 });
  kc = kubeConfigFor(api.url);
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
  // Through client-node's own YAML loader and serializer, as an operator would send a typed object.
  const body = loadYaml<V1CustomResourceDefinition>(
    readFileSync(new URL('../fixtures/local/crds/widgets.yaml', import.meta.url), 'utf8'),
  );
  await kc.makeApiClient(ApiextensionsV1Api).createCustomResourceDefinition({ body });
});

afterAll(async () => {
  await api.close();
});

describe('objects', () => {
  it('stamps uid, creationTimestamp and increasing resourceVersions', async () => {
    const a = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'a' }, data: { k: '1' } },
    });
    const b = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'b' } },
    });
    expect(a.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(Number(b.metadata?.resourceVersion)).toBeGreaterThan(Number(a.metadata?.resourceVersion));
    const list = await core.listNamespacedConfigMap({ namespace: 'default' });
    expect(Number(list.metadata?.resourceVersion)).toBeGreaterThanOrEqual(
      Number(b.metadata?.resourceVersion),
    );
    await expect(
      core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'a' } } }),
    ).rejects.toMatchObject({ code: 409 });
    await expect(core.readNamespacedConfigMap({ namespace: 'default', name: 'nope' })).rejects.toMatchObject({
      code: 404,
    });
  });

  it('answers a stale update with 409 Conflict and accepts the fresh one', async () => {
    const cm = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'stale' }, data: { v: '1' } },
    });
    const fresh = await core.replaceNamespacedConfigMap({
      namespace: 'default',
      name: 'stale',
      body: { ...cm, data: { v: '2' } },
    });
    const err = await core
      .replaceNamespacedConfigMap({ namespace: 'default', name: 'stale', body: { ...cm, data: { v: '3' } } })
      .catch((e: unknown) => e);
    expect(statusOf(err)).toMatchObject({ code: 409, reason: 'Conflict' });
    const ok: V1ConfigMap = await core.replaceNamespacedConfigMap({
      namespace: 'default',
      name: 'stale',
      body: { ...fresh, data: { v: '3' } },
    });
    expect(ok.data).toEqual({ v: '3' });
  });

  it('does not write an update that changes nothing', async () => {
    const cm = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'same' }, data: { v: '1' } },
    });
    const again = await core.replaceNamespacedConfigMap({ namespace: 'default', name: 'same', body: cm });
    expect(again.metadata?.resourceVersion).toBe(cm.metadata?.resourceVersion);
  });

  it('selects pods by label and by spec.nodeName, and rejects unknown field labels', async () => {
    const pod = (name: string, node: string, app: string): V1Pod => ({
      metadata: { name, labels: { app } },
      spec: { nodeName: node, containers: [{ name: 'c', image: 'none' }] },
    });
    await core.createNamespacedPod({ namespace: 'default', body: pod('p1', 'node-a', 'x') });
    await core.createNamespacedPod({ namespace: 'default', body: pod('p2', 'node-b', 'x') });
    await core.createNamespacedPod({ namespace: 'default', body: pod('p3', 'node-a', 'y') });
    const names = (l: { items: V1Pod[] }): string[] => l.items.map((p) => p.metadata!.name!);
    expect(
      names(await core.listNamespacedPod({ namespace: 'default', fieldSelector: 'spec.nodeName=node-a' })),
    ).toEqual(['p1', 'p3']);
    expect(names(await core.listPodForAllNamespaces({ labelSelector: 'app in (x),app!=y' }))).toEqual([
      'p1',
      'p2',
    ]);
    expect(
      names(
        await core.listNamespacedPod({
          namespace: 'default',
          labelSelector: 'app=y',
          fieldSelector: 'spec.nodeName!=node-b',
        }),
      ),
    ).toEqual(['p3']);
    const err = await core
      .listNamespacedPod({ namespace: 'default', fieldSelector: 'spec.bogus=1' })
      .catch((e: unknown) => e);
    expect(statusOf(err)).toMatchObject({ code: 400, reason: 'BadRequest' });
    const p1 = await core.readNamespacedPod({ namespace: 'default', name: 'p1' });
    expect(p1.status?.phase).toBe('Pending');
    expect(p1.status?.qosClass).toBe('BestEffort');
  });
});

describe('built-in rules', () => {
  it('keeps a pod spec immutable but for images, and refuses content in a terminating namespace', async () => {
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'imm' },
        spec: { containers: [{ name: 'c', image: 'one', command: ['a'] }] },
      },
    });
    const image = await core.patchNamespacedPod(
      { namespace: 'default', name: 'imm', body: { spec: { containers: [{ name: 'c', image: 'two' }] } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    expect(image.spec?.containers[0]?.image).toBe('two');
    expect(image.spec?.containers[0]?.command).toEqual(['a']);
    const err: unknown = await core
      .replaceNamespacedPod({
        namespace: 'default',
        name: 'imm',
        body: {
          ...image,
          spec: { ...image.spec!, containers: [{ name: 'c', image: 'two', command: ['b'] }] },
        },
      })
      .catch((e: unknown) => e);
    expect(statusOf(err)).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(statusOf(err).details?.causes?.[0]).toMatchObject({
      field: 'spec',
      reason: 'FieldValueForbidden',
    });

    await core.createNamespace({ body: { metadata: { name: 'doomed' } } });
    await core.createNamespacedConfigMap({
      namespace: 'doomed',
      body: { metadata: { name: 'held', finalizers: ['test/hold'] } },
    });
    await core.deleteNamespace({ name: 'doomed' });
    expect((await core.readNamespace({ name: 'doomed' })).status?.phase).toBe('Terminating');
    const refused: unknown = await core
      .createNamespacedConfigMap({ namespace: 'doomed', body: { metadata: { name: 'new' } } })
      .catch((e: unknown) => e);
    expect(statusOf(refused)).toMatchObject({ code: 403, reason: 'Forbidden' });
    // The namespace goes once its last object does.
    await core.patchNamespacedConfigMap(
      { namespace: 'doomed', name: 'held', body: { metadata: { finalizers: null } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await expect(core.readNamespace({ name: 'doomed' })).rejects.toMatchObject({ code: 404 });
  });
});

describe('watch', () => {
  it('streams from a resourceVersion: history first, then live changes', async () => {
    const first = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'w0', labels: { w: 'yes' } } },
    });
    await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'w1', labels: { w: 'yes' } } },
    });
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'other' } } });
    const seen: string[] = [];
    const req = await new Watch(kc).watch(
      '/api/v1/namespaces/default/configmaps',
      { resourceVersion: first.metadata!.resourceVersion, labelSelector: 'w=yes', allowWatchBookmarks: true },
      (type, obj: V1ConfigMap) => void seen.push(`${type} ${obj.metadata?.name ?? ''}`),
      () => undefined,
    );
    await core.patchNamespacedConfigMap(
      { namespace: 'default', name: 'w1', body: { metadata: { labels: { w: 'no' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await core.deleteNamespacedConfigMap({ namespace: 'default', name: 'w0' });
    await eventually(
      () => (seen.includes('DELETED w0') && seen.includes('BOOKMARK ') ? true : undefined),
      'watch events',
    );
    req.abort();
    // w1 leaving the selection is a DELETED for this watch, as on a real server.
    expect(seen.filter((s) => s !== 'BOOKMARK ')).toEqual(['ADDED w1', 'DELETED w1', 'DELETED w0']);
  });

  it('answers a compacted resourceVersion with a 410 ERROR event', async () => {
    const cm = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'old' } },
    });
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'newer' } } });
    api.compact();
    const events: { type: string; obj: { code?: number; reason?: string } }[] = [];
    let ended = false;
    await new Watch(kc).watch(
      '/api/v1/namespaces/default/configmaps',
      { resourceVersion: cm.metadata!.resourceVersion },
      (type, obj: { code?: number }) => void events.push({ type, obj }),
      () => void (ended = true),
    );
    await eventually(() => (ended ? true : undefined), 'the watch to end');
    expect(events).toEqual([
      { type: 'ERROR', obj: expect.objectContaining({ code: 410, reason: 'Expired' }) },
    ]);
  });

  it('lets the client-node informer relist after 410 Gone', async () => {
    let lists = 0;
    const informer = makeInformer(kc, '/api/v1/namespaces/default/secrets', () => {
      lists++;
      return core.listNamespacedSecret({ namespace: 'default' });
    });
    await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 's1' } } });
    await informer.start();
    await eventually(() => (informer.get('s1', 'default') ? true : undefined), 'the informer to see s1');
    expect(lists).toBe(1);
    // A write elsewhere, then compaction: the informer's version is now too old.
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'bump' } } });
    api.compact();
    api.dropWatches();
    await eventually(() => (lists >= 2 ? true : undefined), 'a relist after 410');
    await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 's2' } } });
    await eventually(() => (informer.get('s2', 'default') ? true : undefined), 'the informer to see s2');
    await informer.stop();
  });
});

describe('custom resources', () => {
  it('validates against the CRD schema with Kubernetes-shaped causes, and applies defaults', async () => {
    const bad = {
      ...widget('bad'),
      spec: { size: 0, color: 'pink', owner: 'X1', tags: ['a', 'b', 'c', 'd'] },
    };
    const err: unknown = await custom
      .createNamespacedCustomObject({
        group: G,
        version: V,
        namespace: 'default',
        plural: 'widgets',
        body: bad,
      })
      .catch((e: unknown) => e);
    const st = statusOf(err);
    expect(st).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(st.details?.causes?.map((c) => [c.field, c.reason]).sort()).toEqual([
      ['spec.color', 'FieldValueNotSupported'],
      ['spec.owner', 'FieldValueInvalid'],
      ['spec.size', 'FieldValueInvalid'],
      ['spec.tags', 'FieldValueTooMany'],
    ]);
    const missing: unknown = await custom
      .createNamespacedCustomObject({
        group: G,
        version: V,
        namespace: 'default',
        plural: 'widgets',
        body: { ...widget('m'), spec: { size: '2' } },
      })
      .catch((e: unknown) => e);
    expect(
      statusOf(missing)
        .details?.causes?.map((c) => [c.field, c.reason])
        .sort(),
    ).toEqual([
      ['spec.color', 'FieldValueRequired'],
      ['spec.size', 'FieldValueTypeInvalid'],
    ]);
    const ok = (await custom.createNamespacedCustomObject({
      group: G,
      version: V,
      namespace: 'default',
      plural: 'widgets',
      body: widget('good'),
    })) as Widget;
    expect(ok.spec['mode']).toBe('Fail');
  });

  it('writes status only through /status, and bumps generation only on spec changes', async () => {
    const w = (await custom.createNamespacedCustomObject({
      group: G,
      version: V,
      namespace: 'default',
      plural: 'widgets',
      body: { ...widget('st'), status: { phase: 'Ignored' } },
    })) as Widget;
    expect(w.status).toBeUndefined();
    expect(w.metadata.generation).toBe(1);
    const s = (await custom.replaceNamespacedCustomObjectStatus({
      group: G,
      version: V,
      namespace: 'default',
      plural: 'widgets',
      name: 'st',
      body: { ...w, status: { phase: 'Ready' }, spec: { size: 9, color: 'red' } },
    })) as Widget;
    expect(s.status).toEqual({ phase: 'Ready' });
    expect(s.spec['size']).toBe(2);
    expect(s.metadata.generation).toBe(1);
    const u = (await custom.replaceNamespacedCustomObject({
      group: G,
      version: V,
      namespace: 'default',
      plural: 'widgets',
      name: 'st',
      body: { ...s, spec: { ...s.spec, size: 5 }, status: { phase: 'Lost' } },
    })) as Widget;
    expect(u.status).toEqual({ phase: 'Ready' });
    expect(u.metadata.generation).toBe(2);
    const l = (await custom.patchNamespacedCustomObject(
      {
        group: G,
        version: V,
        namespace: 'default',
        plural: 'widgets',
        name: 'st',
        body: { metadata: { labels: { a: 'b' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as Widget;
    expect(l.metadata.generation).toBe(2);
    const j = (await custom.patchNamespacedCustomObject(
      {
        group: G,
        version: V,
        namespace: 'default',
        plural: 'widgets',
        name: 'st',
        body: [{ op: 'replace', path: '/spec/size', value: 6 }],
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    )) as Widget;
    expect(j.spec['size']).toBe(6);
    expect(j.metadata.generation).toBe(3);
  });

  it('keeps an object with finalizers until they are removed', async () => {
    await custom.createNamespacedCustomObject({
      group: G,
      version: V,
      namespace: 'default',
      plural: 'widgets',
      body: widget('fin', { finalizers: ['test.fdckpt.io/cleanup'] }),
    });
    await custom.deleteNamespacedCustomObject({
      group: G,
      version: V,
      namespace: 'default',
      plural: 'widgets',
      name: 'fin',
    });
    const held = await getWidget('fin');
    expect(held.metadata.deletionTimestamp).toBeDefined();
    await custom.patchNamespacedCustomObject(
      {
        group: G,
        version: V,
        namespace: 'default',
        plural: 'widgets',
        name: 'fin',
        body: [{ op: 'remove', path: '/metadata/finalizers' }],
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    await expect(getWidget('fin')).rejects.toMatchObject({ code: 404 });
  });

  it('deletes the objects a deleted owner owned', async () => {
    const owner = await getWidget('good');
    await core.createNamespacedConfigMap({
      namespace: 'default',
      body: {
        metadata: {
          name: 'owned',
          ownerReferences: [
            { apiVersion: `${G}/${V}`, kind: 'Widget', name: 'good', uid: owner.metadata.uid },
          ],
        },
      },
    });
    await custom.deleteNamespacedCustomObject({
      group: G,
      version: V,
      namespace: 'default',
      plural: 'widgets',
      name: 'good',
    });
    await expect(core.readNamespacedConfigMap({ namespace: 'default', name: 'owned' })).rejects.toMatchObject(
      { code: 404 },
    );
  });

  it("works through client-node's generic KubernetesObjectApi (discovery-driven)", async () => {
    const objs = KubernetesObjectApi.makeApiClient(kc);
    const spec = { ...widget('generic'), metadata: { name: 'generic', namespace: 'default' } };
    await objs.create(spec);
    const read = (await objs.read({
      apiVersion: `${G}/${V}`,
      kind: 'Widget',
      metadata: { name: 'generic', namespace: 'default' },
    })) as unknown as Widget;
    expect(read.spec['color']).toBe('green');
    const patched = (await objs.patch(
      {
        apiVersion: `${G}/${V}`,
        kind: 'Widget',
        metadata: { name: 'generic', namespace: 'default' },
        spec: { size: 7 },
      } as never,
      undefined,
      undefined,
      undefined,
      undefined,
      PatchStrategy.MergePatch,
    )) as unknown as Widget;
    expect(patched.spec['size']).toBe(7);
    // Custom resources take no strategic merge patch, as on a real server.
    const smp: unknown = await objs
      .patch(
        {
          apiVersion: `${G}/${V}`,
          kind: 'Widget',
          metadata: { name: 'generic', namespace: 'default' },
        } as never,
        undefined,
        undefined,
        undefined,
        undefined,
        PatchStrategy.StrategicMergePatch,
      )
      .catch((e: unknown) => e);
    expect(statusOf(smp)).toMatchObject({ code: 415, reason: 'UnsupportedMediaType' });
    await objs.delete({
      apiVersion: `${G}/${V}`,
      kind: 'Widget',
      metadata: { name: 'generic', namespace: 'default' },
    });
    await expect(getWidget('generic')).rejects.toMatchObject({ code: 404 });
  });
});
