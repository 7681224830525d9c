/**
 * Worker side of the parallel host scan (scanpool.ts): takes pids from the
 * shared counter until none are left, and posts its part of the result.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { scanPids, type ScanPart } from './hostscan.js';

/** One scan, as the pool sends it. */
export interface ScanJob {
  keys: string[];
  anonLinks: string[];
  pids: number[];
  exclude: number[];
  /** Int32[1]: index of the next pid to take. */
  counter: SharedArrayBuffer;
  /** Int32 per worker: 0 queued, 1 running, 2 done, 3 cancelled by the pool. */
  state: SharedArrayBuffer;
  slot: number;
  port: MessagePort;
}

/** What a worker posts back: its part, or why it failed. */
export type ScanReply = { part: ScanPart } | { error: string };

// Every import above (koffi's native module among them) has loaded: the pool may now let the process exit.
const flag = (workerData as { loaded?: SharedArrayBuffer } | null)?.loaded;
if (flag !== undefined) {
  const loaded = new Int32Array(flag);
  Atomics.store(loaded, 0, 1);
  Atomics.notify(loaded, 0);
}

parentPort?.on('message', (job: ScanJob) => {
  const state = new Int32Array(job.state);
  // The pool cancels a job that has not started when it runs out of work itself.
  if (Atomics.compareExchange(state, job.slot, 0, 1) !== 0) {
    job.port.close();
    return;
  }
  const counter = new Int32Array(job.counter);
  let reply: ScanReply;
  try {
    const next = (): number => {
      const i = Atomics.add(counter, 0, 1);
      return i < job.pids.length ? i : -1;
    };
    reply = {
      part: scanPids(
        { keys: new Set(job.keys), anonLinks: new Set(job.anonLinks) },
        job.pids,
        new Set(job.exclude),
        next,
      ),
    };
  } catch (err) {
    reply = { error: err instanceof Error ? err.message : String(err) };
  }
  job.port.postMessage(reply);
  job.port.close();
  Atomics.store(state, job.slot, 2);
  Atomics.notify(state, job.slot);
});
