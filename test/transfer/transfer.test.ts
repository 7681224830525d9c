/**
 * The image transfer between agents over real HTTP on 127.0.0.1: a good
 * transfer, refusals, an image corrupted in transit, and a server process
 * killed mid-transfer. A failed transfer never leaves a file behind.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { fetchImage } from '../../src/agent/transfer/client.js';
import { TransferError } from '../../src/agent/transfer/errors.js';
import { startTransferServer } from '../../src/agent/transfer/server.js';
import type { RunningTransferServer, ServableImage } from '../../src/agent/transfer/server.js';
import { verifySharedImage } from '../../src/agent/transfer/shared.js';

let dir: string;
let image: ServableImage;
let server: RunningTransferServer;

function makeImage(path: string, bytes: number): ServableImage {
  const data = randomBytes(bytes);
  writeFileSync(path, data);
  return {
    path,
    size: bytes,
    sha256: createHash('sha256').update(data).digest('hex'),
    token: randomBytes(32).toString('hex'),
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fdckpt-transfer-'));
  image = makeImage(join(dir, 'src.fdckpt'), 5 * 1024 * 1024 + 17);
  server = await startTransferServer({
    host: '127.0.0.1',
    lookup: (ns, name) => Promise.resolve(ns === 'default' && name === 'c1' ? image : undefined),
  });
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function request(
  dest: string,
  over: Partial<Parameters<typeof fetchImage>[0]> = {},
): Parameters<typeof fetchImage>[0] {
  return {
    url: server.url,
    namespace: 'default',
    checkpoint: 'c1',
    token: image.token,
    dest,
    sha256: image.sha256,
    size: image.size,
    ...over,
  };
}

async function failure(p: Promise<unknown>): Promise<TransferError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TransferError) return err;
    throw err;
  }
  throw new Error('the transfer succeeded');
}

/** Nothing named after `dest` (no image, no .part) is left in its directory. */
function leftovers(sub: string): string[] {
  return existsSync(join(dir, sub)) ? readdirSync(join(dir, sub)) : [];
}

describe('image transfer', () => {
  it('streams the image and verifies its digest', async () => {
    const dest = join(dir, 'ok', 'c1.fdckpt');
    const got = await fetchImage(request(dest));
    expect(got.bytes).toBe(image.size);
    expect(readFileSync(dest).equals(readFileSync(image.path))).toBe(true);
    expect(leftovers('ok')).toEqual(['c1.fdckpt']);
  });

  it('refuses a wrong token, an unknown checkpoint, and leaves no file', async () => {
    const dest = join(dir, 'refused', 'c1.fdckpt');
    expect((await failure(fetchImage(request(dest, { token: 'x'.repeat(64) })))).reason).toBe('Forbidden');
    expect((await failure(fetchImage(request(dest, { checkpoint: 'c2' })))).reason).toBe('ImageNotFound');
    expect(leftovers('refused')).toEqual([]);
  });

  it('refuses an unreachable agent', async () => {
    const dest = join(dir, 'unreachable', 'c1.fdckpt');
    const closed = await startTransferServer({ host: '127.0.0.1', lookup: () => Promise.resolve(undefined) });
    await closed.close();
    expect((await failure(fetchImage(request(dest, { url: closed.url })))).reason).toBe('Unreachable');
  });

  describe('an image corrupted in transit', () => {
    let proxy: Server;
    let proxyUrl: string;
    beforeAll(async () => {
      // A TCP relay that flips one byte well past the response headers.
      proxy = createServer((client) => {
        const upstream = connect(server.port, '127.0.0.1');
        let seen = 0;
        client.pipe(upstream);
        upstream.on('data', (chunk: Buffer) => {
          const at = 4096 - seen;
          if (at >= 0 && at < chunk.length) chunk[at] = (chunk[at] ?? 0) ^ 0xff;
          seen += chunk.length;
          client.write(chunk);
        });
        upstream.on('end', () => client.end());
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
      });
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      const address = proxy.address();
      proxyUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    });
    afterAll(async () => {
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    });

    it('is refused with ChecksumMismatch and nothing is kept', async () => {
      const dest = join(dir, 'corrupt', 'c1.fdckpt');
      const err = await failure(fetchImage(request(dest, { url: proxyUrl })));
      expect(err.reason).toBe('ChecksumMismatch');
      expect(err.message).toContain(image.sha256);
      expect(leftovers('corrupt')).toEqual([]);
    });
  });

  it('refuses an image whose size does not match the Checkpoint', async () => {
    const dest = join(dir, 'short', 'c1.fdckpt');
    const err = await failure(fetchImage(request(dest, { size: image.size + 1 })));
    expect(err.reason).toBe('Truncated');
    const over = await failure(fetchImage(request(dest, { size: image.size - 1 })));
    expect(over.reason).toBe('ChecksumMismatch');
    expect(leftovers('short')).toEqual([]);
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

describe('the source agent killed mid-transfer', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
  });

  /** The server module compiled to JS and run in its own process, serving a 64 MiB image. */
  async function serverProcess(big: ServableImage): Promise<{ proc: ChildProcess; url: string }> {
    const source = readFileSync(
      fileURLToPath(new URL('../../src/agent/transfer/server.ts', import.meta.url)),
      'utf8',
    );
    const js = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    writeFileSync(join(dir, 'server.mjs'), js);
    writeFileSync(
      join(dir, 'main.mjs'),
      `import { startTransferServer } from './server.mjs';
const image = JSON.parse(process.argv[2]);
const s = await startTransferServer({ host: '127.0.0.1', lookup: async () => image });
process.stdout.write(s.url + '\\n');`,
    );
    const proc = spawn(process.execPath, [join(dir, 'main.mjs'), JSON.stringify(big)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      proc.stdout?.once('data', (d: Buffer) => resolve(d.toString().trim()));
      proc.once('exit', (code) => reject(new Error(`server process exited with ${code}`)));
    });
    return { proc, url };
  }

  it('fails with Truncated and leaves no partial image', async () => {
    const big = makeImage(join(dir, 'big.fdckpt'), 64 * 1024 * 1024);
    const { proc, url } = await serverProcess(big);
    child = proc;
    let killedAt = -1;
    const dest = join(dir, 'killed', 'big.fdckpt');
    const err = await failure(
      fetchImage({
        url,
        namespace: 'default',
        checkpoint: 'big',
        token: big.token,
        dest,
        sha256: big.sha256,
        size: big.size,
        // The first chunk is in: kill the server while the rest is still on its side.
        onProgress: async (received) => {
          if (killedAt >= 0) return;
          killedAt = received;
          const exited = new Promise((resolve) => proc.once('exit', resolve));
          proc.kill('SIGKILL');
          await exited;
        },
      }),
    );
    expect(killedAt).toBeGreaterThan(0);
    expect(err.reason).toBe('Truncated');
    expect(err.message).toMatch(/of 67108864 bytes/);
    expect(leftovers('killed')).toEqual([]);
  });
});
