/**
 * ResourceClient.read() with an informer attached: served from the cache (the real
 * kube-apiserver counts no GET for it), a clone (the cache stays frozen and unchanged),
 * and still the client's own last write when the watch has not brought it yet.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import type { Checkpoint } from '../../src/api/index.js';
import { CHECKPOINT } from '../../src/api/index.js';
import { ResourceClient } from '../../src/kube/client.js';
import { Informer, objectKey } from '../../src/kube/informer.js';
import { silentLogger } from '../../src/kube/log.js';
import { KUBECTL } from '../support/kubectl.js';
import { sample } from '../support/metrics.js';
import { until } from '../support/until.js';
import type { Harness } from './support.js';
import { createCheckpoint, startHarness } from './support.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
}, 120_000);
afterAll(async () => {
  await h?.close();
});

/** GETs of one Checkpoint the API server has answered so far, from its own /metrics. */
function checkpointGets(): number {
  const text = execFileSync(
    KUBECTL,
    ['--kubeconfig', h.cluster.adminKubeconfig, 'get', '--raw', '/metrics'],
    {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    },
  );
  return (
    sample(text, 'apiserver_request_total', {
      verb: 'GET',
      group: 'fdckpt.io',
      resource: 'checkpoints',
      subresource: '',
      code: '200',
    }) ?? 0
  );
}

describe('read() through an informer', () => {
  it('reads from the cache, clones, and sees its own writes', async () => {
    await createCheckpoint(h, 'cached', { podName: 'p' });
    const informer = new Informer<Checkpoint>(
      h.kc,
      { list: () => h.checkpoints.listAll(), watchPath: h.checkpoints.watchPath },
      silentLogger,
    );
    await informer.start();
    try {
      h.checkpoints.readThrough(informer);
      const before = checkpointGets();
      const read = await h.checkpoints.read('default', 'cached');
      expect(read?.metadata.name).toBe('cached');
      // A clone: changing it leaves the cache's (frozen) copy as it was.
      read!.metadata.labels = { changed: 'yes' };
      expect(informer.get('default/cached')?.metadata.labels?.['changed']).toBeUndefined();
      for (let i = 0; i < 5; i++) await h.checkpoints.read('default', 'cached');
      expect(checkpointGets()).toBe(before);

      // A write, then a read at once: the client's own write, whether or not the watch has
      // brought it to the cache yet (then the read is a GET).
      const fresh = (await h.checkpoints.read('default', 'cached'))!;
      const written = await h.checkpoints.replaceStatus({ ...fresh, status: { phase: 'Pending' } });
      const after = await h.checkpoints.read('default', 'cached');
      expect(after?.metadata.resourceVersion).toBe(written.metadata.resourceVersion);
      expect(after?.status).toEqual(written.status);

      // Once the watch has it, reads are the cache's again.
      await until('the watch brings the write', () =>
        Promise.resolve(
          informer.get(objectKey(written))?.metadata.resourceVersion === written.metadata.resourceVersion
            ? true
            : undefined,
        ),
      );
      const settled = checkpointGets();
      await h.checkpoints.read('default', 'cached');
      expect(checkpointGets()).toBe(settled);

      // Not in the cache (it has not seen the object yet, or never will): read live.
      expect(await h.checkpoints.read('default', 'absent')).toBeUndefined();
    } finally {
      await informer.stop();
    }
  }, 60_000);

  it('a cache that lags behind a write of ours is not believed for that object', async () => {
    const created = await createCheckpoint(h, 'lagging', { podName: 'p' });
    // A cache that never moves on, as one whose watch is slow: deterministic staleness.
    const snapshot = Object.freeze(structuredClone(created));
    const client = new ResourceClient<Checkpoint>(h.custom, CHECKPOINT).readThrough({
      hasSynced: true,
      get: (key) => (key === 'default/lagging' ? snapshot : undefined),
    });
    const first = await client.read('default', 'lagging');
    expect(first?.metadata.resourceVersion).toBe(created.metadata.resourceVersion);
    const once = await client.replaceStatus({ ...first!, status: { phase: 'Pending' } });
    expect((await client.read('default', 'lagging'))?.metadata.resourceVersion).toBe(
      once.metadata.resourceVersion,
    );
    // A second write from what the read gave: the cache's copy is two writes behind now.
    const twice = await client.patchMetadata(once, { labels: { step: 'two' } });
    const last = await client.read('default', 'lagging');
    expect(last?.metadata.resourceVersion).toBe(twice.metadata.resourceVersion);
    expect(last?.metadata.labels?.['step']).toBe('two');
  }, 30_000);
});
