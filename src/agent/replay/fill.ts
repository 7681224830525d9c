/**
 * Fills: the agent writes a large memfd's contents into the target's new
 * memfd itself, between two runs of the stub, instead of carrying them in the
 * plan's data area (which is built in the agent's memory, copied, and written
 * into the target's): the bytes go from the image file (or the captured
 * buffer) to the memfd one chunk at a time, so memory does not grow with them.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { STORED_CHUNK_BYTES, isStored, storedChunks } from '../image/stored.js';
import type { Fill } from '../replay-steps/builder.js';
import { ReplayError } from '../replay-steps/errors.js';

let chunk: Buffer | undefined;
/** One buffer for every fill of this process (replay runs on one thread, one fill at a time). */
function chunkBuffer(): Buffer {
  chunk ??= Buffer.allocUnsafe(STORED_CHUNK_BYTES);
  return chunk;
}

/**
 * Writes `fill.bytes` at offset 0 of fd `fill.fd` of `pid`, reopened through
 * /proc/PID/fd (the new memfd has no seals yet: they come after). Stored bytes
 * that no longer match the image's hash throw after being written: the caller
 * kills the target, so they are never run with.
 */
export function runFill(pid: number, fill: Fill): void {
  const where = `/proc/${pid}/fd/${fill.fd}`;
  const fail = (why: string): ReplayError => new ReplayError(fill.owner.fd, fill.owner.path, why);
  let fd: number;
  try {
    fd = openSync(where, constants.O_WRONLY);
  } catch (err) {
    throw fail(`open ${where} to write the contents: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    let at = 0;
    const chunks = isStored(fill.bytes) ? storedChunks(fill.bytes, chunkBuffer()) : [fill.bytes];
    for (const chunk of chunks) {
      for (let done = 0; done < chunk.length;)
        done += writeSync(fd, chunk, done, chunk.length - done, at + done);
      at += chunk.length;
    }
  } catch (err) {
    if (err instanceof ReplayError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw fail(`writing the contents into ${where}: ${e.code ?? e.message}`);
  } finally {
    closeSync(fd);
  }
}
