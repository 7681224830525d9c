/**
 * Issue 12, items 1 and 22: status.image.path is written by whoever may write
 * checkpoints/status, so neither the image server nor the deletion of a
 * Checkpoint may act on it as given. The server serves only the regular file
 * the agent itself wrote for that Checkpoint, inside its data directory; a
 * path outside it does not keep the Checkpoint in Deleting. And the file there must be
 * an image bound to that Checkpoint (namespace, name, uid): another Checkpoint's image
 * planted at its path is refused by the server, not only by the fetching agent.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Checkpoint } from '../../src/api/index.js';
import { AgentCheckpointReconciler, imagePathFor } from '../../src/agent/daemon/checkpoint.js';
import { EngineAdapter } from '../../src/agent/daemon/engine-adapter.js';
import { imageLookup } from '../../src/agent/migration/images.js';
import { startTransferServer } from '../../src/agent/transfer/server.js';
import type { RunningTransferServer } from '../../src/agent/transfer/server.js';
import { CheckpointReconciler } from '../../src/controller/checkpoint.js';
import { MemoryEventRecorder } from '../../src/kube/events.js';
import { bindingOf, writeBoundImage, type Binding } from '../support/bound-image.js';
import type { Harness } from '../controller/support.js';
import { createCheckpoint, makePod, startHarness } from '../controller/support.js';
import { tokenAuthorizer } from '../support/transfer.js';

const TOKEN = 't'.repeat(64);
let h: Harness;
let dir: string;
let data: string;
let server: RunningTransferServer;
let ckpt: Checkpoint;
let errors: string[];

beforeEach(async () => {
  h = await startHarness();
  dir = mkdtempSync(join(tmpdir(), 'fdckpt-sec-transfer-'));
  data = join(dir, 'data');
  await h.core.createNode({ body: { metadata: { name: 'n1' } } });
  await makePod(h, 'src', { node: 'n1', phase: 'Running' });
  ckpt = await createCheckpoint(h, 'c1', { podName: 'src' });
  errors = [];
  server = await startTransferServer({
    host: '127.0.0.1',
    root: data,
    // Who may ask is test/security/transfer-auth.test.ts's subject: here, the one test token.
    authorize: tokenAuthorizer(TOKEN),
    lookup: imageLookup({ nodeName: 'n1', dataDir: data, checkpoints: h.checkpoints }),
    onError: (m) => errors.push(m),
  });
});
afterEach(async () => {
  await server.close();
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Point c1's status at `path` (size and digest of what is there, as an attacker would). */
async function claim(path: string, size?: number): Promise<void> {
  const current = await h.checkpoints.get('default', 'c1');
  const bytes = existsSync(path) && size === undefined ? readFileSync(path).length : (size ?? 0);
  await h.checkpoints.replaceStatus({
    ...current,
    status: { nodeName: 'n1', image: { node: 'n1', path, size: bytes, sha256: 'a'.repeat(64) } },
  });
}

function fetchC1(): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(
      `${server.url}/v1/images/default/c1`,
      { headers: { authorization: `Bearer ${TOKEN}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ code: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
  });
}

/** A secret file outside the data directory. */
function hostFile(): string {
  const path = join(dir, 'host-secret');
  writeFileSync(path, 'root:$6$secret-hash:19000:0:99999:7:::\n', { mode: 0o600 });
  return path;
}

describe('the image server serves only the Checkpoint’s own image', () => {
  it('serves the image at the path the agent writes for the Checkpoint', async () => {
    const path = imagePathFor(data, ckpt);
    const content = await writeBoundImage(path, bindingOf(ckpt));
    await claim(path);
    const got = await fetchC1();
    expect(got.code).toBe(200);
    expect(got.body).toBe(content.toString());
  });

  it('refuses another Checkpoint’s image planted at the path, by its header binding (409)', async () => {
    const path = imagePathFor(data, ckpt);
    const c2 = await createCheckpoint(h, 'c2', { podName: 'src' });
    const refusals: [string, Binding | undefined, string][] = [
      ['c2’s image', bindingOf(c2), `bound to checkpoint default/c2 (uid ${c2.metadata.uid ?? ''})`],
      // A Checkpoint deleted and made again with the same name has another uid.
      [
        'an older c1’s image',
        { ...bindingOf(ckpt), uid: 'old-uid' },
        'bound to checkpoint default/c1 (uid old-uid)',
      ],
      ['an unbound image (the CLI’s)', undefined, 'an image bound to no Checkpoint'],
    ];
    for (const [what, binding, logged] of refusals) {
      errors.length = 0;
      await writeBoundImage(path, binding);
      await claim(path);
      const got = await fetchC1();
      expect([what, got.code]).toEqual([what, 409]);
      expect(got.body).toBe(
        `the image on this node at the path of checkpoint default/c1 is not bound to it (uid ${ckpt.metadata.uid ?? ''})\n`,
      );
      expect(errors.join('\n')).toContain(logged);
    }
    // Not an image at all: refused as well, and its bytes are not sent.
    writeFileSync(path, 'root:$6$secret-hash:19000:0:99999:7:::\n');
    await claim(path);
    const got = await fetchC1();
    expect(got.code).toBe(409);
    expect(got.body).not.toContain('root:');
    expect(errors.join('\n')).toContain('not an fdckpt image');
  });

  it('refuses a host file named in status.image.path (/etc/shadow, a file outside the data dir)', async () => {
    for (const path of ['/etc/shadow', hostFile()]) {
      await claim(path);
      const got = await fetchC1();
      expect(got.code).toBe(404);
      expect(got.body).not.toContain('root:');
    }
  });

  it('refuses a path inside the data dir that is not this Checkpoint’s (another one’s image, ../)', async () => {
    const other = join(data, 'images', 'default', 'c2-0000.fdckpt');
    mkdirSync(dirname(other), { recursive: true });
    writeFileSync(other, 'another tenant’s image');
    await claim(other);
    expect((await fetchC1()).code).toBe(404);
    await claim(join(imagePathFor(data, ckpt), '..', '..', '..', '..', 'host-secret'));
    hostFile();
    expect((await fetchC1()).code).toBe(404);
  });

  it('refuses a symlink planted at the image path, and a symlinked directory on the way', async () => {
    const secret = hostFile();
    const path = imagePathFor(data, ckpt);
    mkdirSync(dirname(path), { recursive: true });
    symlinkSync(secret, path);
    await claim(path, readFileSync(secret).length);
    let got = await fetchC1();
    expect(got.code).toBe(404);
    expect(got.body).not.toContain('root:');
    // The namespace directory itself a link to a directory outside the data dir.
    rmSync(join(data, 'images'), { recursive: true });
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, `c1-${ckpt.metadata.uid ?? ''}.fdckpt`), readFileSync(secret));
    mkdirSync(join(data, 'images'));
    symlinkSync(outside, join(data, 'images', 'default'));
    got = await fetchC1();
    expect(got.code).toBe(404);
    expect(got.body).not.toContain('root:');
    expect(errors.join('\n')).toMatch(/not under|ELOOP/);
  });

  it('refuses a FIFO at the image path without blocking on it', async () => {
    const path = imagePathFor(data, ckpt);
    mkdirSync(dirname(path), { recursive: true });
    execFileSync('mkfifo', [path]);
    await claim(path, 0);
    const got = await fetchC1();
    expect(got.code).toBe(404);
    expect(errors.join('\n')).toContain('not a regular file');
  });
});

describe('deleting a Checkpoint whose status names a path outside the data dir', () => {
  it('deletes the agent’s own image, leaves the named file alone, and the Checkpoint goes', async () => {
    const secret = hostFile();
    const own = imagePathFor(data, ckpt);
    mkdirSync(dirname(own), { recursive: true });
    writeFileSync(own, 'our image');
    const events = new MemoryEventRecorder();
    const ctl = new CheckpointReconciler({ checkpoints: h.checkpoints, core: h.core, events });
    const agent = new AgentCheckpointReconciler(h.checkpoints, {
      nodeName: 'n1',
      dataDir: data,
      engine: new EngineAdapter({ dataDir: data }),
      core: h.core,
      events,
    });
    await ctl.reconcile('default/c1'); // finalizer, scheduling
    await claim(secret);
    await h.checkpoints.delete(await h.checkpoints.get('default', 'c1'));
    await ctl.reconcile('default/c1');
    expect((await h.checkpoints.get('default', 'c1')).status?.phase).toBe('Deleting');
    await agent.reconcile('default/c1');
    await ctl.reconcile('default/c1');
    await expect(h.checkpoints.get('default', 'c1')).rejects.toMatchObject({ code: 404 });
    expect(existsSync(secret)).toBe(true);
    expect(existsSync(own)).toBe(false);
    expect(events.events.map((e) => e.reason)).toContain('ImagePathRefused');
  });
});
