/**
 * Fetches an image from another node's agent into a local file: streamed to
 * `<dest>.part` while hashed, checked against the size and SHA-256 the
 * Checkpoint recorded, then renamed into place. Any failure removes the part
 * file, so a half-received image is never replayed.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { get } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TransferError } from './errors.js';

export interface FetchRequest {
  /** Base URL of the source agent's transfer server. */
  url: string;
  namespace: string;
  checkpoint: string;
  token: string;
  /** Where the image goes. */
  dest: string;
  /** What the Checkpoint status says (image.sha256, image.size). */
  sha256: string;
  size: number;
  /** Called after each chunk is hashed; awaiting it holds the stream back. */
  onProgress?: (received: number) => Promise<void> | void;
  timeoutMs?: number;
}

export interface FetchResult {
  path: string;
  bytes: number;
  ms: number;
}

function request(url: string, token: string, timeoutMs: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers: { authorization: `Bearer ${token}` }, timeout: timeoutMs }, resolve);
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', (err) => reject(new TransferError('Unreachable', `GET ${url}: ${err.message}`)));
  });
}

async function body(res: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of res) text += String(chunk);
  return text.trim();
}

async function refuse(res: IncomingMessage, url: string): Promise<never> {
  const code = res.statusCode ?? 0;
  const reason =
    code === 401 ? 'Unauthorized' : code === 403 ? 'Forbidden' : code === 404 ? 'ImageNotFound' : 'HttpError';
  throw new TransferError(reason, `GET ${url}: ${code} ${await body(res).catch(() => '')}`);
}

/** Fetch one image; throws TransferError (and leaves no file behind) on any failure. */
export async function fetchImage(req: FetchRequest): Promise<FetchResult> {
  const t0 = performance.now();
  const url = `${req.url.replace(/\/$/, '')}/v1/images/${req.namespace}/${req.checkpoint}`;
  const part = `${req.dest}.part`;
  const res = await request(url, req.token, req.timeoutMs ?? 30_000);
  if (res.statusCode !== 200) return refuse(res, url);
  const hash = createHash('sha256');
  let received = 0;
  await mkdir(dirname(req.dest), { recursive: true, mode: 0o700 });
  try {
    await pipeline(
      res,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk);
          received += chunk.length;
          if (received > req.size) {
            throw new TransferError(
              'ChecksumMismatch',
              `GET ${url}: more than the ${req.size} bytes recorded`,
            );
          }
          await req.onProgress?.(received);
          yield chunk;
        }
      },
      createWriteStream(part, { mode: 0o600 }),
    );
  } catch (err) {
    await rm(part, { force: true });
    if (err instanceof TransferError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    // A reset or an early end from the server is a truncation, whatever the socket says.
    if (received < req.size || !res.complete) {
      throw new TransferError(
        'Truncated',
        `GET ${url}: connection lost after ${received} of ${req.size} bytes (${message})`,
      );
    }
    throw new TransferError('WriteFailed', `writing ${part}: ${message}`);
  }
  const digest = hash.digest('hex');
  const fail = async (reason: 'Truncated' | 'ChecksumMismatch', message: string): Promise<never> => {
    await rm(part, { force: true });
    throw new TransferError(reason, message);
  };
  if (received !== req.size || !res.complete) {
    return fail('Truncated', `GET ${url}: received ${received} of ${req.size} bytes`);
  }
  if (digest !== req.sha256) {
    return fail('ChecksumMismatch', `GET ${url}: sha256 ${digest}, the Checkpoint says ${req.sha256}`);
  }
  await rename(part, req.dest);
  return { path: req.dest, bytes: received, ms: performance.now() - t0 };
}
