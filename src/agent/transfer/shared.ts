/**
 * Shared-volume mode: every agent mounts the same image directory, so the
 * target reads the source's file where it is. It is still verified: a shared
 * volume can serve a stale or half-written file.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TransferError } from './errors.js';

/** True when `path` lies inside the shared directory. */
export function onSharedVolume(sharedDir: string, path: string): boolean {
  return resolve(path).startsWith(resolve(sharedDir) + sep);
}

/** SHA-256 (hex) of a file, streamed. */
export async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** Check a shared image against the Checkpoint's size and digest; returns its path. */
export async function verifySharedImage(path: string, size: number, sha256: string): Promise<string> {
  let actual: number;
  try {
    actual = (await stat(path)).size;
  } catch (err) {
    throw new TransferError('ImageNotFound', `shared image ${path}: ${(err as Error).message}`);
  }
  if (actual !== size)
    throw new TransferError('Truncated', `shared image ${path}: ${actual} bytes, expected ${size}`);
  const digest = await sha256Of(path);
  if (digest !== sha256) {
    throw new TransferError('ChecksumMismatch', `shared image ${path}: sha256 ${digest}, expected ${sha256}`);
  }
  return path;
}
