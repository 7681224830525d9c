/**
 * Bytes an image reader left in the file (StoredBytes, model.ts): read back
 * in bounded chunks, and checked against the hash taken while the image's own
 * checksum was checked, so that a file changed since is refused, not used.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import type { StoredBytes } from '../model.js';

/** Chunk size for reading stored bytes back: memory stays at one chunk whatever their length. */
export const STORED_CHUNK_BYTES = 1 << 20;

/** Whether contents are in memory or left in an image file. */
export function isStored(v: Buffer | StoredBytes): v is StoredBytes {
  return !Buffer.isBuffer(v);
}

/**
 * The stored bytes in chunks of at most STORED_CHUNK_BYTES: each a fresh Buffer, or,
 * given `into`, a view of it valid until the next chunk (no garbage: a fresh buffer per
 * chunk piles up tens of MB before the collector runs). Throws, after the last chunk
 * and before returning, when they no longer hash to `s.sha256` or the file got
 * shorter: a consumer must undo what it did with them.
 */
export function* storedChunks(s: StoredBytes, into?: Buffer): Generator<Buffer, void, undefined> {
  const fd = openSync(s.image, 'r');
  try {
    const hash = createHash('sha256');
    for (let done = 0; done < s.length;) {
      const n = Math.min(into?.length ?? STORED_CHUNK_BYTES, s.length - done);
      const chunk = into ? into.subarray(0, n) : Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < chunk.length) {
        const n = readSync(fd, chunk, filled, chunk.length - filled, s.offset + done + filled);
        if (n === 0) throw new Error(`${where(s)}: the image shrank since it was checked`);
        filled += n;
      }
      hash.update(chunk);
      done += chunk.length;
      yield chunk;
    }
    const got = hash.digest();
    if (!got.equals(s.sha256)) {
      throw new Error(
        `${where(s)}: sha256 ${got.toString('hex')}, ${s.sha256.toString('hex')} when the image was checked: it changed since`,
      );
    }
  } finally {
    closeSync(fd);
  }
}

function where(s: StoredBytes): string {
  return `image ${s.image}: ${s.length} bytes at offset ${s.offset}`;
}
