/**
 * Resumable transfer over real HTTPS on 127.0.0.1: a connection cut once
 * mid-body resumes from the bytes already kept (Range) rather than starting
 * again; a server process SIGKILLed and started again on its port within the
 * retry window is resumed from; one that stays down fails after the retries
 * with the reason. Bytes damaged in transit are refused by TLS and never
 * reach the file. A failed transfer never leaves a file behind.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_RETRY, backoffMs, fetchImage } from '../../src/agent/transfer/client.js';
import type { FetchRequest } from '../../src/agent/transfer/client.js';
import type { TransferError } from '../../src/agent/transfer/errors.js';
import { startTransferServer } from '../../src/agent/transfer/server.js';
import type { RunningTransferServer } from '../../src/agent/transfer/server.js';
import { certSha256, selfSignedCert } from '../../src/tls/x509.js';
import type { Relay, TestImage } from '../support/transfer.js';
import { failure, kill, makeImage, serverProcess, startRelay, tokenAuthorizer } from '../support/transfer.js';

let dir: string;
let image: TestImage;
let server: RunningTransferServer;
const tls = selfSignedCert('fdckpt-agent test', 1);
const pin = certSha256(tls.cert);
let relay: Relay | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fdckpt-resume-'));
  image = makeImage(join(dir, 'src.fdckpt'), 8 * 1024 * 1024 + 5);
  server = await startTransferServer({
    host: '127.0.0.1',
    tls,
    root: dir,
    authorize: tokenAuthorizer(image.token),
    lookup: () => Promise.resolve(image),
  });
});
afterEach(async () => {
  await relay?.close();
  relay = undefined;
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function request(dest: string, url: string, over: Partial<FetchRequest> = {}): FetchRequest {
  return {
    url,
    certSha256: pin,
    namespace: 'default',
    checkpoint: 'c1',
    token: image.token,
    dest,
    sha256: image.sha256,
    size: image.size,
    retry: { attempts: 4, initialDelayMs: 50, maxDelayMs: 200 },
    ...over,
  };
}

const leftovers = (sub: string): string[] => (existsSync(join(dir, sub)) ? readdirSync(join(dir, sub)) : []);
const same = (path: string, img: TestImage): boolean => readFileSync(path).equals(readFileSync(img.path));

describe('the retry policy', () => {
  it('waits 1, 2, 4, 8 s by default: about 15 s for a source agent to come back', () => {
    const waits = [1, 2, 3, 4].map((n) => backoffMs(DEFAULT_RETRY, n));
    expect(waits).toEqual([1000, 2000, 4000, 8000]);
    expect(DEFAULT_RETRY.attempts).toBe(5);
    expect(backoffMs({ attempts: 9, initialDelayMs: 1000, maxDelayMs: 5000 }, 8)).toBe(5000);
  });
});

describe('a connection cut mid-body', () => {
  it('resumes from the bytes kept instead of starting again', async () => {
    relay = await startRelay(server.port, (n) => (n === 0 ? { cutAfter: image.size / 2 } : {}));
    const dest = join(dir, 'cut', 'c1.fdckpt');
    const retried: TransferError[] = [];
    const got = await fetchImage(
      request(dest, `https://127.0.0.1:${relay.port}`, { onRetry: (e) => retried.push(e) }),
    );
    expect(got.attempts).toBe(2);
    expect(retried.map((e) => e.reason)).toEqual(['Truncated']);
    expect(same(dest, image)).toBe(true);
    // Every body byte arrived once, and the server sent well under two images: a resume.
    expect(got.received).toBe(image.size);
    expect(relay.connections).toBe(2);
    expect(relay.sent).toBeGreaterThan(image.size);
    expect(relay.sent).toBeLessThan(2 * image.size);
    expect(leftovers('cut')).toEqual(['c1.fdckpt']);
  });

  it('asks where the source is before each retry (a recreated agent has a new address)', async () => {
    relay = await startRelay(server.port, () => ({ cutAfter: image.size / 3 }));
    const dest = join(dir, 'moved', 'c1.fdckpt');
    const got = await fetchImage(
      request(dest, `https://127.0.0.1:${relay.port}`, {
        refresh: () => Promise.resolve({ url: server.url, certSha256: pin }),
      }),
    );
    expect(got.attempts).toBe(2);
    expect(relay.connections).toBe(1);
    expect(same(dest, image)).toBe(true);
  });

  it('bytes damaged in transit are refused by TLS on every attempt and never kept', async () => {
    relay = await startRelay(server.port, () => ({ flipAt: 1024 * 1024 }));
    const dest = join(dir, 'damaged', 'c1.fdckpt');
    const err = await failure(fetchImage(request(dest, `https://127.0.0.1:${relay.port}`)));
    expect(err.reason).toBe('Truncated');
    expect(err.message).toMatch(/attempt 4 of 4/);
    expect(relay.connections).toBe(4);
    expect(leftovers('damaged')).toEqual([]);
  });
});

describe('the source agent killed mid-transfer', () => {
  let child: ChildProcess | undefined;
  afterEach(async () => {
    if (child) await kill(child);
    child = undefined;
  });

  it('started again on its port within the retry window: the fetch resumes and succeeds', async () => {
    const big = makeImage(join(dir, 'big.fdckpt'), 64 * 1024 * 1024);
    const first = await serverProcess(dir, big, tls);
    child = first.proc;
    let killedAt = -1;
    const dest = join(dir, 'restarted', 'big.fdckpt');
    const got = await fetchImage({
      ...request(dest, first.url),
      checkpoint: 'big',
      token: big.token,
      sha256: big.sha256,
      size: big.size,
      retry: { attempts: 6, initialDelayMs: 100, maxDelayMs: 1000 },
      // The first chunks are in: kill the server while the rest is on its side, start it again.
      onProgress: async (received) => {
        if (killedAt >= 0) return;
        killedAt = received;
        await kill(first.proc);
        child = (await serverProcess(dir, big, tls, first.port)).proc;
      },
    });
    expect(killedAt).toBeGreaterThan(0);
    expect(killedAt).toBeLessThan(big.size);
    expect(got.attempts).toBeGreaterThanOrEqual(2);
    expect(got.received).toBe(big.size); // resumed: nothing received twice
    expect(same(dest, big)).toBe(true);
    rmSync(big.path);
  });

  it('staying down: fails after the retries with the reason, and leaves no partial image', async () => {
    const big = makeImage(join(dir, 'big2.fdckpt'), 64 * 1024 * 1024);
    const { proc, url } = await serverProcess(dir, big, tls);
    child = proc;
    let killedAt = -1;
    const retried: string[] = [];
    const dest = join(dir, 'killed', 'big.fdckpt');
    const err = await failure(
      fetchImage({
        ...request(dest, url),
        checkpoint: 'big',
        token: big.token,
        sha256: big.sha256,
        size: big.size,
        onRetry: (e) => retried.push(e.reason),
        onProgress: async (received) => {
          if (killedAt >= 0) return;
          killedAt = received;
          await kill(proc);
        },
      }),
    );
    expect(killedAt).toBeGreaterThan(0);
    expect(retried).toEqual(['Truncated', 'Unreachable', 'Unreachable']);
    expect(err.reason).toBe('Unreachable');
    expect(err.message).toMatch(/ECONNREFUSED.*\(attempt 4 of 4\)/);
    expect(leftovers('killed')).toEqual([]);
    rmSync(big.path);
  });
});
