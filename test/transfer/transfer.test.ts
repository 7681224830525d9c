/**
 * The image transfer between agents over real HTTPS on 127.0.0.1: a good
 * transfer with the server's certificate pinned, refusals that fail at once,
 * an impostor certificate, a plain http endpoint, ranges, and images that are
 * not the Checkpoint's. A failed transfer never leaves a file behind.
 * (test/transfer/resume.test.ts: cut connections and a killed server.)
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchImage } from '../../src/agent/transfer/client.js';
import type { FetchRequest } from '../../src/agent/transfer/client.js';
import { getFrom } from '../../src/agent/transfer/connect.js';
import { parseRange, startTransferServer } from '../../src/agent/transfer/server.js';
import type { RunningTransferServer } from '../../src/agent/transfer/server.js';
import { verifySharedImage } from '../../src/agent/transfer/shared.js';
import { certSha256, selfSignedCert } from '../../src/tls/x509.js';
import type { TestImage } from '../support/transfer.js';
import { failure, makeImage, tokenAuthorizer } from '../support/transfer.js';

let dir: string;
let image: TestImage;
/** An image whose recorded digest is not its content's. */
let liar: TestImage;
let server: RunningTransferServer;
const tls = selfSignedCert('fdckpt-agent test', 1);
const pin = certSha256(tls.cert);
/** Requests the server was asked to authorize (each one that got past the TLS handshake). */
let requests = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fdckpt-transfer-'));
  image = makeImage(join(dir, 'src.fdckpt'), 5 * 1024 * 1024 + 17);
  liar = { ...makeImage(join(dir, 'liar.fdckpt'), 70_000), sha256: 'a'.repeat(64) };
  server = await startTransferServer({
    host: '127.0.0.1',
    tls,
    root: dir,
    authorize: (credential, ns, name) => {
      requests++;
      return tokenAuthorizer(image.token, liar.token)(credential, ns, name);
    },
    lookup: (ns, name) => {
      if (ns !== 'default') return Promise.resolve(undefined);
      return Promise.resolve(name === 'c1' ? image : name === 'liar' ? liar : undefined);
    },
  });
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function request(dest: string, over: Partial<FetchRequest> = {}): FetchRequest {
  return {
    url: server.url,
    certSha256: pin,
    namespace: 'default',
    checkpoint: 'c1',
    token: image.token,
    dest,
    sha256: image.sha256,
    size: image.size,
    retry: { attempts: 3, initialDelayMs: 20, maxDelayMs: 50 },
    ...over,
  };
}

/** What is left in a test's destination directory. */
function leftovers(sub: string): string[] {
  return existsSync(join(dir, sub)) ? readdirSync(join(dir, sub)) : [];
}

describe('image transfer over TLS', () => {
  it('streams the image from the pinned server and verifies its digest', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const dest = join(dir, 'ok', 'c1.fdckpt');
    const got = await fetchImage(request(dest));
    expect(got).toMatchObject({ bytes: image.size, received: image.size, attempts: 1 });
    expect(readFileSync(dest).equals(readFileSync(image.path))).toBe(true);
    expect(leftovers('ok')).toEqual(['c1.fdckpt']);
  });

  it('refuses a wrong token and an unknown checkpoint at once, and leaves no file', async () => {
    const dest = join(dir, 'refused', 'c1.fdckpt');
    const before = requests;
    const forbidden = await failure(fetchImage(request(dest, { token: 'x'.repeat(64) })));
    expect(forbidden.reason).toBe('Forbidden');
    expect((await failure(fetchImage(request(dest, { checkpoint: 'c2' })))).reason).toBe('ImageNotFound');
    expect(requests - before).toBe(2); // one request each: refusals are not retried
    expect(forbidden.message).not.toMatch(/attempt/);
    expect(leftovers('refused')).toEqual([]);
  });

  it('refuses a server whose certificate is not the pinned one, before sending the token', async () => {
    const dest = join(dir, 'impostor', 'c1.fdckpt');
    const before = requests;
    const other = certSha256(selfSignedCert('someone else', 1).cert);
    const err = await failure(fetchImage(request(dest, { certSha256: other })));
    expect(err.reason).toBe('UntrustedPeer');
    expect(err.message).toContain(pin);
    expect(err.message).toContain(other);
    expect(requests).toBe(before); // no HTTP request reached the server, hence no token
    expect(leftovers('impostor')).toEqual([]);
    const none = await failure(fetchImage(request(dest, { certSha256: undefined })));
    expect(none.reason).toBe('UntrustedPeer');
    expect(none.message).toMatch(/no certificate fingerprint/);
    // The pin may be written as openssl prints it.
    const colons = pin.toUpperCase().replace(/(..)(?!$)/g, '$1:');
    expect((await fetchImage(request(dest, { certSha256: colons }))).bytes).toBe(image.size);
  });

  it('refuses a plain http endpoint unless allowed (development)', async () => {
    const plain = await startTransferServer({
      host: '127.0.0.1',
      root: dir,
      authorize: tokenAuthorizer(image.token),
      lookup: () => Promise.resolve(image),
    });
    try {
      expect(plain.url).toMatch(/^http:\/\//);
      const dest = join(dir, 'plain', 'c1.fdckpt');
      const err = await failure(fetchImage(request(dest, { url: plain.url, certSha256: undefined })));
      expect(err.reason).toBe('InsecureEndpoint');
      expect(leftovers('plain')).toEqual([]);
      const got = await fetchImage(request(dest, { url: plain.url, allowInsecure: true }));
      expect(got.bytes).toBe(image.size);
    } finally {
      await plain.close();
    }
  });

  it('refuses an image that is not the Checkpoint’s, and leaves no file', async () => {
    const dest = join(dir, 'mismatch', 'c1.fdckpt');
    // The server announces another digest: refused before the body.
    const early = await failure(fetchImage(request(dest, { sha256: 'b'.repeat(64) })));
    expect(early.reason).toBe('ChecksumMismatch');
    // The digest announced is the recorded one, the content is not: found by hashing.
    const late = await failure(
      fetchImage(
        request(dest, { checkpoint: 'liar', token: liar.token, size: liar.size, sha256: liar.sha256 }),
      ),
    );
    expect(late.reason).toBe('ChecksumMismatch');
    expect(late.message).toContain(liar.sha256);
    expect(leftovers('mismatch')).toEqual([]);
  });

  it('refuses an image whose size does not match the Checkpoint, at once', async () => {
    const dest = join(dir, 'short', 'c1.fdckpt');
    const before = requests;
    const err = await failure(fetchImage(request(dest, { size: image.size + 1 })));
    expect(err.reason).toBe('Truncated');
    const over = await failure(fetchImage(request(dest, { size: image.size - 1 })));
    expect(over.reason).toBe('ChecksumMismatch');
    expect(requests - before).toBe(2);
    expect(leftovers('short')).toEqual([]);
  });
});

describe('ranges', () => {
  async function get(range?: string, token = image.token): Promise<{ res: IncomingMessage; body: Buffer }> {
    const res = await getFrom({ url: server.url, certSha256: pin }, '/v1/images/default/c1', {
      headers: { authorization: `Bearer ${token}`, ...(range ? { range } : {}) },
      timeoutMs: 10_000,
    });
    const chunks: Buffer[] = [];
    for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
    return { res, body: Buffer.concat(chunks) };
  }
  const whole = (): Buffer => readFileSync(image.path);

  it('serves the rest of the image from an offset (206, Content-Range)', async () => {
    const tail = await get(`bytes=${image.size - 10}-`);
    expect(tail.res.statusCode).toBe(206);
    expect(tail.res.headers['content-range']).toBe(
      `bytes ${image.size - 10}-${image.size - 1}/${image.size}`,
    );
    expect(tail.body.equals(whole().subarray(image.size - 10))).toBe(true);
    const all = await get('bytes=0-');
    expect(all.res.statusCode).toBe(206);
    expect(all.body.length).toBe(image.size);
    const mid = await get('bytes=100-199');
    expect(mid.res.headers['content-length']).toBe('100');
    expect(mid.body.equals(whole().subarray(100, 200))).toBe(true);
  });

  it('answers 416 past the end, and the whole image to a range it does not do', async () => {
    for (const range of [`bytes=${image.size}-`, `bytes=${image.size + 5}-${image.size + 9}`]) {
      const r = await get(range);
      expect(r.res.statusCode).toBe(416);
      expect(r.res.headers['content-range']).toBe(`bytes */${image.size}`);
    }
    for (const range of ['bytes=-5', 'bytes=1-2,5-6', 'bytes=9-3', 'items=0-']) {
      const r = await get(range);
      expect(r.res.statusCode).toBe(200);
      expect(r.body.length).toBe(image.size);
    }
    // No token, no size: the range is looked at only after the token.
    expect((await get(`bytes=${image.size}-`, 'y'.repeat(64))).res.statusCode).toBe(403);
  });

  it('parses ranges', () => {
    expect(parseRange(undefined, 10)).toBeUndefined();
    expect(parseRange('bytes=3-', 10)).toEqual({ start: 3, end: 9 });
    expect(parseRange('bytes=3-100', 10)).toEqual({ start: 3, end: 9 });
    expect(parseRange('bytes=10-', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-', 0)).toBe('unsatisfiable');
    expect(parseRange('bytes=99999999999999999999-', 10)).toBeUndefined();
  });
});

describe('shared volume', () => {
  it('verifies the file in place', async () => {
    expect(await verifySharedImage(image.path, image.size, image.sha256)).toBe(image.path);
    const bad = await failure(verifySharedImage(image.path, image.size, 'a'.repeat(64)));
    expect(bad.reason).toBe('ChecksumMismatch');
    const gone = await failure(verifySharedImage(join(dir, 'nope'), 1, 'a'.repeat(64)));
    expect(gone.reason).toBe('ImageNotFound');
  });
});
