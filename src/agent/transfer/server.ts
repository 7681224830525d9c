/**
 * The image server of an agent: other nodes' agents GET the image of a
 * Checkpoint captured here, with the Checkpoint's bearer token. Streamed from
 * disk with backpressure; the digest goes in a header so that the client can
 * fail fast on a mismatch, but the client always hashes what it received.
 *
 * Imports only node: modules, so that tests can run it in a separate process
 * (and kill that process mid-transfer).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';

/** The path of one image: /v1/images/<namespace>/<checkpoint>. */
export const IMAGE_ROUTE = /^\/v1\/images\/([a-z0-9][-a-z0-9.]*)\/([a-z0-9][-a-z0-9.]*)$/;

/** An image this node can serve, and the token that opens it. */
export interface ServableImage {
  path: string;
  size: number;
  sha256: string;
  token: string;
}

export interface TransferServerOptions {
  port?: number;
  host?: string;
  /** The image of namespace/checkpoint if it is on this node, else undefined (404). */
  lookup(namespace: string, checkpoint: string): Promise<ServableImage | undefined>;
  /** Told about each request that failed, for the agent's log. */
  onError?: (message: string) => void;
}

export interface RunningTransferServer {
  port: number;
  /** `http://host:port`, what the node annotation advertises. */
  url: string;
  close(): Promise<void>;
}

/** Header carrying the image's SHA-256 (hex). */
export const SHA256_HEADER = 'x-fdckpt-sha256';

/** Compares tokens in constant time (hashing first makes the lengths equal). */
export function tokensEqual(a: string, b: string): boolean {
  const h = (s: string): Buffer => createHash('sha256').update(s).digest();
  return a.length > 0 && b.length > 0 && timingSafeEqual(h(a), h(b));
}

function reply(res: ServerResponse, code: number, text: string): void {
  res.writeHead(code, { 'content-type': 'text/plain' });
  res.end(`${text}\n`);
}

async function handle(
  options: TransferServerOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const match = IMAGE_ROUTE.exec(path);
  if (req.method !== 'GET' || !match) return reply(res, 404, `no route ${req.method ?? ''} ${path}`);
  const [, namespace = '', checkpoint = ''] = match;
  const auth = req.headers.authorization ?? '';
  if (!auth.startsWith('Bearer ')) return reply(res, 401, 'a bearer token is required');
  const image = await options.lookup(namespace, checkpoint);
  // The same answer for "no such image" and "wrong token" would hide which; the
  // token is per checkpoint, so telling them apart leaks nothing worth hiding.
  if (!image) return reply(res, 404, `no image of checkpoint ${namespace}/${checkpoint} on this node`);
  if (!tokensEqual(auth.slice('Bearer '.length), image.token)) {
    return reply(res, 403, `the token does not open checkpoint ${namespace}/${checkpoint}`);
  }
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': String(image.size),
    [SHA256_HEADER]: image.sha256,
  });
  await pipeline(createReadStream(image.path), res);
}

/** Start serving; `port` 0 picks a free one. */
export async function startTransferServer(options: TransferServerOptions): Promise<RunningTransferServer> {
  const server = createServer((req, res) => {
    handle(options, req, res).catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      options.onError?.(`transfer ${req.url ?? ''}: ${message}`);
      if (!res.headersSent) reply(res, 500, message);
      else res.destroy();
    });
  });
  const host = options.host ?? '0.0.0.0';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0);
  return {
    port,
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
