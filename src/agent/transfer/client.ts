/**
 * Fetches an image from another node's agent into a local file: streamed to
 * `<dest>.part` while hashed, checked against the size and SHA-256 the
 * Checkpoint recorded, then renamed into place.
 *
 * Resumable: a lost connection or a short body is retried (bounded
 * exponential backoff) with `Range: bytes=<what we have>-`, keeping the part
 * file and the running hash, so that a network blip or a source agent
 * restarted by its DaemonSet costs a few seconds, not the migration. Every
 * byte is written before it is hashed and counted, so the hash, the count and
 * the file always agree when an attempt breaks off. Refusals (401/403/404,
 * 416, a digest mismatch, an untrusted peer) fail at once. Any final failure
 * removes the part file, so a half-received image is never replayed.
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PeerEndpoint } from './connect.js';
import { getFrom } from './connect.js';
import { TransferError } from './errors.js';
import { SHA256_HEADER } from './server.js';

export type { PeerEndpoint } from './connect.js';

/** How often and how patiently a cut transfer is retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Wait before the second attempt; doubled each time after. */
  initialDelayMs: number;
  maxDelayMs: number;
}

/** 5 attempts, waits of 1, 2, 4 and 8 s: about 15 s for a source agent to come back. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, initialDelayMs: 1000, maxDelayMs: 8000 };

export interface FetchRequest extends PeerEndpoint {
  namespace: string;
  checkpoint: string;
  token: string;
  /** Where the image goes. */
  dest: string;
  /** What the Checkpoint status says (image.sha256, image.size). */
  sha256: string;
  size: number;
  /** Called after each chunk is written and hashed; awaiting it holds the stream back. */
  onProgress?: (received: number) => Promise<void> | void;
  /** Socket idle limit per attempt, ms. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /**
   * Where the source agent is now, asked before each retry (its Node's
   * annotations: a recreated agent pod has a new address). Default: the same.
   */
  refresh?: () => Promise<PeerEndpoint>;
  /** Accept a plain http:// endpoint (development only). */
  allowInsecure?: boolean;
  /** Told about each failed attempt that will be retried, and the wait before the next. */
  onRetry?: (err: TransferError, attempt: number, delayMs: number) => void;
}

export interface FetchResult {
  path: string;
  /** The image's size. */
  bytes: number;
  /** Body bytes received over the network, all attempts together (= bytes when every resume was exact). */
  received: number;
  attempts: number;
  ms: number;
}

/** The wait after failed attempt `n` (1-based). */
export function backoffMs(policy: RetryPolicy, n: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (n - 1));
}

async function text(res: IncomingMessage): Promise<string> {
  let out = '';
  for await (const chunk of res) out += String(chunk);
  return out.trim();
}

async function refusal(res: IncomingMessage, where: string): Promise<TransferError> {
  const code = res.statusCode ?? 0;
  const reason =
    code === 401 ? 'Unauthorized' : code === 403 ? 'Forbidden' : code === 404 ? 'ImageNotFound' : 'HttpError';
  // A 5xx is the server's trouble of the moment (an agent starting, a disk busy): worth a retry.
  return new TransferError(reason, `GET ${where}: ${code} ${await text(res).catch(() => '')}`, code >= 500);
}

/** The part file, its running hash and how much of the image it holds. */
class PartFile {
  hash: Hash = createHash('sha256');
  have = 0;
  /** Body bytes received in all attempts. */
  received = 0;
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  static async create(path: string): Promise<PartFile> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    return new PartFile(path, await open(path, 'w', 0o600));
  }

  /** Back to zero (the server sent the whole image instead of the range). */
  async reset(): Promise<void> {
    await this.fh.truncate(0);
    this.hash = createHash('sha256');
    this.have = 0;
  }

  async append(chunk: Buffer): Promise<void> {
    try {
      await this.fh.write(chunk, 0, chunk.length, this.have);
    } catch (err) {
      throw new TransferError('WriteFailed', `writing ${this.path}: ${(err as Error).message}`);
    }
    this.hash.update(chunk);
    this.have += chunk.length;
    this.received += chunk.length;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/** One attempt: ask for what is missing and append it. Throws TransferError. */
async function attempt(req: FetchRequest, peer: PeerEndpoint, part: PartFile): Promise<void> {
  const path = `/v1/images/${req.namespace}/${req.checkpoint}`;
  const where = `${peer.url.replace(/\/$/, '')}${path}`;
  const from = part.have;
  const res = await getFrom(peer, path, {
    headers: {
      authorization: `Bearer ${req.token}`,
      ...(from > 0 ? { range: `bytes=${from}-` } : {}),
    },
    timeoutMs: req.timeoutMs ?? 30_000,
    allowInsecure: req.allowInsecure,
  });
  if (res.statusCode === 416) {
    // We asked for what follows the bytes we have: the server's image is shorter than the Checkpoint's.
    res.resume();
    throw new TransferError(
      'Truncated',
      `GET ${where}: the server has no bytes from ${from} on (${String(res.headers['content-range'])}), the Checkpoint says ${req.size}`,
    );
  }
  if (res.statusCode !== 200 && res.statusCode !== 206) throw await refusal(res, where);
  const total =
    res.statusCode === 206
      ? Number(/\/(\d+)$/.exec(String(res.headers['content-range']))?.[1] ?? NaN)
      : Number(res.headers['content-length'] ?? NaN);
  if (!Number.isNaN(total) && total !== req.size) {
    // Not a cut: the image served is not the Checkpoint's size, another attempt would not help.
    res.destroy();
    throw new TransferError(
      total < req.size ? 'Truncated' : 'ChecksumMismatch',
      `GET ${where}: serves ${total} bytes, the Checkpoint says ${req.size}`,
    );
  }
  if (res.statusCode === 200 && from > 0) {
    await part.reset(); // a server without ranges: take the whole image again
  } else if (res.statusCode === 206) {
    const expected = `bytes ${from}-${req.size - 1}/${req.size}`;
    if (res.headers['content-range'] !== expected) {
      res.destroy();
      throw new TransferError(
        'HttpError',
        `GET ${where}: content-range ${res.headers['content-range'] ?? 'missing'}, asked for ${expected}`,
      );
    }
  }
  const served = res.headers[SHA256_HEADER];
  if (typeof served === 'string' && served !== req.sha256) {
    // Another image than the Checkpoint's: resuming into it would mix two images.
    res.destroy();
    throw new TransferError(
      'ChecksumMismatch',
      `GET ${where}: serves sha256 ${served}, the Checkpoint says ${req.sha256}`,
    );
  }
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (part.have + chunk.length > req.size) {
        throw new TransferError('ChecksumMismatch', `GET ${where}: more than the ${req.size} bytes recorded`);
      }
      await part.append(chunk);
      await req.onProgress?.(part.have);
    }
  } catch (err) {
    res.destroy();
    if (err instanceof TransferError) throw err;
    // A reset or an early end from the server is a truncation, whatever the socket says.
    throw new TransferError(
      'Truncated',
      `GET ${where}: connection lost after ${part.have} of ${req.size} bytes (${(err as Error).message})`,
      true,
    );
  }
  if (!res.complete || part.have !== req.size) {
    throw new TransferError('Truncated', `GET ${where}: received ${part.have} of ${req.size} bytes`, true);
  }
}

/** The endpoint for the next attempt; an API hiccup keeps the last one, a TransferError (the node is gone) ends the fetch. */
async function refreshed(req: FetchRequest, peer: PeerEndpoint): Promise<PeerEndpoint> {
  try {
    return (await req.refresh?.()) ?? peer;
  } catch (err) {
    if (err instanceof TransferError) throw err;
    return peer;
  }
}

/** Fetch one image; throws TransferError (and leaves no file behind) on any failure. */
export async function fetchImage(req: FetchRequest): Promise<FetchResult> {
  const t0 = performance.now();
  const policy: RetryPolicy = { ...DEFAULT_RETRY, ...req.retry };
  const part = await PartFile.create(`${req.dest}.part`);
  let peer: PeerEndpoint = { url: req.url, certSha256: req.certSha256 };
  let n = 1;
  try {
    for (; ; n++) {
      try {
        await attempt(req, peer, part);
        break;
      } catch (err) {
        const e = err instanceof TransferError ? err : new TransferError('WriteFailed', String(err));
        if (!e.retryable || n >= policy.attempts) {
          const tried = n > 1 ? ` (attempt ${n} of ${policy.attempts})` : '';
          throw new TransferError(e.reason, `${e.message}${tried}`, e.retryable);
        }
        const delay = backoffMs(policy, n);
        req.onRetry?.(e, n, delay);
        await sleep(delay);
        peer = await refreshed(req, peer);
      }
    }
    const digest = part.hash.digest('hex');
    if (digest !== req.sha256) {
      throw new TransferError(
        'ChecksumMismatch',
        `GET ${peer.url}: sha256 ${digest}, the Checkpoint says ${req.sha256}`,
      );
    }
    await part.close();
    await rename(part.path, req.dest);
  } catch (err) {
    await part.close().catch(() => undefined);
    await rm(part.path, { force: true });
    throw err;
  }
  return {
    path: req.dest,
    bytes: req.size,
    received: part.received,
    attempts: n,
    ms: performance.now() - t0,
  };
}
