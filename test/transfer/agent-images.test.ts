/**
 * The agents' Kubernetes side of image transfer, against a real API server: a
 * target agent gets a Checkpoint's image from the source agent's real
 * transfer server, found through the source Node's annotation and opened with
 * the target agent's own node-bound token (who may have what is
 * test/security/transfer-auth.test.ts's subject); and the thaw loop answers a rollback.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Checkpoint } from '../../src/api/index.js';
import {
  THAW_ANNOTATION,
  TRANSFER_CERT_ANNOTATION,
  TRANSFER_ENDPOINT_ANNOTATION,
} from '../../src/api/index.js';
import { imagePathFor } from '../../src/agent/daemon/checkpoint.js';
import type { PodTarget } from '../../src/agent/daemon/engine.js';
import { advertiseEndpoint, imageLookup, localImage } from '../../src/agent/migration/images.js';
import { AgentThawReconciler } from '../../src/agent/migration/thaw.js';
import { startMigrationSupport } from '../../src/agent/migration/wiring.js';
import type { TransferOptions } from '../../src/agent/migration/wiring.js';
import { TransferError } from '../../src/agent/transfer/errors.js';
import type { TransferIdentity } from '../../src/agent/transfer/identity.js';
import { transferIdentity } from '../../src/agent/transfer/identity.js';
import { startTransferServer } from '../../src/agent/transfer/server.js';
import type { RunningTransferServer } from '../../src/agent/transfer/server.js';
import { MemoryEventRecorder } from '../../src/kube/events.js';
import { silentLogger } from '../../src/kube/log.js';
import { Informer } from '../../src/kube/informer.js';
import { bindingOf, writeBoundImage } from '../support/bound-image.js';
import type { Harness } from '../controller/support.js';
import { createCheckpoint, makePod, startHarness } from '../controller/support.js';
import type { AgentIdentity } from '../support/agents.js';
import { agentIdentities, assignRestore } from '../support/agents.js';

let h: Harness;
let dir: string;
let server: RunningTransferServer;
let ckpt: Checkpoint;
let digest: string;
let size: number;
let identity: TransferIdentity;
let agents: Map<string, AgentIdentity>;
const agent = (node: string): AgentIdentity => agents.get(node)!;

beforeEach(async () => {
  h = await startHarness();
  dir = mkdtempSync(join(tmpdir(), 'fdckpt-agentimg-'));
  for (const n of ['n1', 'n2']) await h.core.createNode({ body: { metadata: { name: n } } });
  await makePod(h, 'src', { node: 'n1', phase: 'Running' });
  ckpt = await createCheckpoint(h, 'c1', { podName: 'src' });
  // Where the source agent itself writes it: the only path its server serves.
  const path = imagePathFor(join(dir, 'a'), ckpt);
  mkdirSync(dirname(path), { recursive: true });
  // A real image bound to c1: the server reads its header.
  const data = await writeBoundImage(path, bindingOf(ckpt), randomBytes(300_000));
  size = data.length;
  digest = createHash('sha256').update(data).digest('hex');
  ckpt = await h.checkpoints.replaceStatus({
    ...ckpt,
    status: { nodeName: 'n1', image: { node: 'n1', path, size: data.length, sha256: digest } },
  });
  agents = await agentIdentities(h, ['n1', 'n2']);
  // n2 restores c1: its agent may fetch the image.
  await assignRestore(h, 'r1', 'c1', 'n2');
  identity = await transferIdentity('fdckpt-agent n1', join(dir, 'a', 'tls'));
  server = await startTransferServer({
    host: '127.0.0.1',
    tls: identity,
    root: join(dir, 'a'),
    authorize: agent('n1').authorizer,
    lookup: imageLookup({
      nodeName: 'n1',
      dataDir: join(dir, 'a'),
      checkpoints: h.checkpoints,
    }),
  });
  await advertiseEndpoint(h.core, 'n1', server.url, identity.sha256);
});
afterEach(async () => {
  await server.close();
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

const target = (): Parameters<typeof localImage>[0] => ({
  nodeName: 'n2',
  dataDir: join(dir, 'b'),
  core: h.core,
  checkpoints: h.checkpoints,
  tokenFile: agent('n2').transferTokenFile,
  retry: { attempts: 2, initialDelayMs: 10, maxDelayMs: 10 },
});

describe('image fetch between agents', () => {
  it('fetches from the advertised endpoint, pinned to the advertised certificate, with its own token', async () => {
    const annotations = (await h.core.readNode({ name: 'n1' })).metadata?.annotations;
    expect(annotations?.[TRANSFER_ENDPOINT_ANNOTATION]).toBe(server.url);
    expect(server.url).toMatch(/^https:/);
    expect(annotations?.[TRANSFER_CERT_ANNOTATION]).toBe(identity.sha256);
    const logged: string[] = [];
    const got = await localImage({ ...target(), log: (m) => logged.push(m) }, ckpt);
    expect(got.transfer).toEqual({ bytes: size, attempts: 1 });
    expect(logged).toEqual([
      expect.stringMatching(new RegExp(`${size} bytes .* ${size} received in 1 attempt`)),
    ]);
    expect(got.path.startsWith(join(dir, 'b', 'images', 'default'))).toBe(true);
    expect(createHash('sha256').update(readFileSync(got.path)).digest('hex')).toBe(digest);
    // Same node: no transfer at all.
    expect(await localImage({ ...target(), nodeName: 'n1' }, ckpt)).toEqual({
      path: ckpt.status?.image?.path,
      transferMs: 0,
    });
  });

  it('without its token file the agent asks nothing; the server looks up only its own path', async () => {
    const err = await localImage({ ...target(), tokenFile: join(dir, 'no-token') }, ckpt).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TransferError);
    expect((err as TransferError).reason).toBe('Unauthorized');
    expect((err as TransferError).message).toContain(
      `no transfer token at ${join(dir, 'no-token')} (ENOENT)`,
    );
    expect(existsSync(join(dir, 'b', 'images'))).toBe(false);
    expect(
      await imageLookup({ nodeName: 'n1', dataDir: '', checkpoints: h.checkpoints })('default', 'c1'),
    ).toBeUndefined();
  });

  it('a node no Restore of the Checkpoint is assigned to is Forbidden', async () => {
    await h.restores.delete(await h.restores.get('default', 'r1'));
    const err = (await localImage(target(), ckpt).catch((e: unknown) => e)) as TransferError;
    expect(err.reason).toBe('Forbidden');
    expect(err.message).toContain('no Restore of checkpoint default/c1 in progress is assigned to node n2');
  });

  it('a source node without an endpoint is Unreachable; shared volume mode reads in place', async () => {
    const n1 = await h.core.readNode({ name: 'n1' });
    await h.core.replaceNode({ name: 'n1', body: { ...n1, metadata: { ...n1.metadata, annotations: {} } } });
    const err = (await localImage(target(), ckpt).catch((e: unknown) => e)) as TransferError;
    expect(err.reason).toBe('Unreachable');
    const shared = await localImage({ ...target(), sharedDir: join(dir, 'a') }, ckpt);
    expect(shared.path).toBe(ckpt.status?.image?.path);
    expect(existsSync(join(dir, 'b'))).toBe(false);
  });
});

describe('the channel between agents', () => {
  it('a Node pinning another certificate makes the fetch UntrustedPeer; an http endpoint is refused', async () => {
    await advertiseEndpoint(h.core, 'n1', server.url, 'c'.repeat(64));
    const err = (await localImage(target(), ckpt).catch((e: unknown) => e)) as TransferError;
    expect(err.reason).toBe('UntrustedPeer');
    expect(err.message).toContain(identity.sha256);
    expect(existsSync(join(dir, 'b', 'images', 'default'))).toBe(true);
    expect(readdirSync(join(dir, 'b', 'images', 'default'))).toEqual([]);
    // An agent advertising plain http (and removing its pin): refused unless allowed.
    await advertiseEndpoint(h.core, 'n1', server.url.replace('https:', 'http:'), null);
    const n1 = await h.core.readNode({ name: 'n1' });
    expect(n1.metadata?.annotations?.[TRANSFER_CERT_ANNOTATION]).toBeUndefined();
    const insecure = (await localImage(target(), ckpt).catch((e: unknown) => e)) as TransferError;
    expect(insecure.reason).toBe('InsecureEndpoint');
  });

  it('an agent advertises https with its pin, or plain http without one only when insecure', async () => {
    const start = (transfer: TransferOptions): ReturnType<typeof startMigrationSupport> =>
      startMigrationSupport({
        kc: h.kc,
        clients: h,
        checkpoints: h.checkpoints,
        // Not started: this test only looks at what the agent advertises.
        checkpointInformer: new Informer<Checkpoint>(
          h.kc,
          { list: () => h.checkpoints.listAll(), watchPath: h.checkpoints.watchPath },
          silentLogger,
        ),
        restores: h.restores,
        nodeName: 'n2',
        dataDir: join(dir, 'b'),
        events: new MemoryEventRecorder(),
        log: silentLogger,
        transfer: { host: '127.0.0.1', ...transfer },
      });
    await expect(start({ port: 0, advertiseUrl: 'http://127.0.0.1:1' })).rejects.toThrow(
      /--transfer-url http:\/\/127.0.0.1:1: the transfer server speaks https \(plain http only with --transfer-insecure\)/,
    );
    const annotations = async (): Promise<Record<string, string>> =>
      (await h.core.readNode({ name: 'n2' })).metadata?.annotations ?? {};
    const secure = await start({ port: 0 });
    await secure.stop();
    const pinned = await annotations();
    expect(pinned[TRANSFER_ENDPOINT_ANNOTATION]).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(pinned[TRANSFER_CERT_ANNOTATION]).toBe(
      (await transferIdentity('fdckpt-agent n2', join(dir, 'b', 'tls'))).sha256,
    );
    const insecure = await start({ port: 0, insecure: true });
    await insecure.stop();
    const plain = await annotations();
    expect(plain[TRANSFER_ENDPOINT_ANNOTATION]).toMatch(/^http:\/\//);
    expect(plain[TRANSFER_CERT_ANNOTATION]).toBeUndefined();
  });

  it('the agent keeps its identity across restarts, in files only root can read', async () => {
    const tlsDir = join(dir, 'a', 'tls');
    expect(statSync(tlsDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(tlsDir, 'transfer.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(tlsDir, 'transfer.crt')).mode & 0o777).toBe(0o600);
    const again = await transferIdentity('fdckpt-agent n1', tlsDir);
    expect(again.sha256).toBe(identity.sha256);
    // Near its end (within 30 days), or unreadable, it is made anew.
    const late = await transferIdentity('fdckpt-agent n1', tlsDir, new Date(Date.now() + 340 * 86_400_000));
    expect(late.sha256).not.toBe(identity.sha256);
    writeFileSync(join(tlsDir, 'transfer.key'), 'garbage');
    expect((await transferIdentity('fdckpt-agent n1', tlsDir)).sha256).not.toBe(late.sha256);
    // Without a directory: in memory only, a new one each time.
    expect((await transferIdentity('x')).sha256).not.toBe((await transferIdentity('x')).sha256);
  });
});

describe('the thaw loop', () => {
  it('thaws the source pod once when asked, and answers', async () => {
    const thawed: PodTarget[] = [];
    const r = new AgentThawReconciler(h.checkpoints, {
      nodeName: 'n1',
      core: h.core,
      events: new MemoryEventRecorder(),
      thaw: (pod) => {
        thawed.push(pod);
        return Promise.resolve();
      },
    });
    await r.reconcile('default/c1');
    expect(thawed).toEqual([]);
    ckpt = await h.checkpoints.get('default', 'c1');
    await h.checkpoints.patchMetadata(ckpt, { annotations: { [THAW_ANNOTATION]: 'true' } });
    await r.reconcile('default/c1');
    await r.reconcile('default/c1');
    expect(thawed.map((p) => p.name)).toEqual(['src']);
    const after = await h.checkpoints.get('default', 'c1');
    expect(after.status?.conditions?.find((c) => c.type === 'Thawed')).toMatchObject({
      status: 'True',
      reason: 'Thawed',
    });
  });
});
