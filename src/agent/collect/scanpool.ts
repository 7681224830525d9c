/**
 * The host scan on several threads. Reading /proc/PID/fd links is kernel work
 * per fd (bench/RESULTS.md: the scan is ~1.1× the readlink floor), so more
 * threads are the remaining lever. Threads take processes from one shared
 * counter (a few processes often hold most fds), the calling thread works
 * too, and the call stays synchronous: the caller waits on Atomics and reads
 * each worker's part with receiveMessageOnPort.
 *
 * Workers are started once and unref'd. Where the worker script is not
 * runnable JavaScript (the TypeScript sources under jest) the scan runs on
 * the calling thread alone.
 *
 * A scan never returns while a worker is still loading: a worker torn down
 * in the middle of loading koffi's native module aborts the whole process
 * (napi_throw on a terminating environment), and a one-shot CLI exits right
 * after its scan. So when the calling thread finishes first, it waits for
 * each idle worker to have loaded before cancelling its job.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { hostPids, scanHost, scanPids, type HostScan, type ScanPart, type ScanTargets } from './hostscan.js';
import type { ScanJob, ScanReply } from './scanworker.js';

/** A started worker and its load flag (Int32[1]: 0 loading, 1 loaded), set by scanworker.ts. */
interface PoolWorker {
  worker: Worker;
  loaded: Int32Array;
}

let pool: PoolWorker[] | undefined;

function workerScript(): URL | undefined {
  if (!import.meta.url.endsWith('.js')) return undefined;
  const url = new URL('./scanworker.js', import.meta.url);
  return existsSync(fileURLToPath(url)) ? url : undefined;
}

function workers(count: number, url: URL): PoolWorker[] {
  pool ??= [];
  while (pool.length < count) {
    const loaded = new Int32Array(new SharedArrayBuffer(4));
    // The worker needs none of our node flags (--input-type would even make it fail to load).
    const w = new Worker(url, { execArgv: [], workerData: { loaded: loaded.buffer } });
    w.unref();
    // A dead worker is dropped; the next scan starts another.
    w.once('error', () => (pool = pool?.filter((x) => x.worker !== w)));
    w.once('exit', () => (pool = pool?.filter((x) => x.worker !== w)));
    pool.push({ worker: w, loaded });
  }
  return pool.slice(0, count);
}

/** Whether every pool worker has finished loading (what the tests check after a scan). */
export function scanWorkersLoaded(): boolean[] {
  return (pool ?? []).map((w) => Atomics.load(w.loaded, 0) === 1);
}

/** Blocks until `w` has loaded its modules; a worker that cannot load within the limit fails the scan. */
function awaitLoaded(w: PoolWorker, slot: number): void {
  const deadline = Date.now() + WORKER_TIMEOUT_MS;
  while (Atomics.load(w.loaded, 0) !== 1) {
    if (Atomics.wait(w.loaded, 0, 0, 1000) === 'timed-out' && Date.now() > deadline) {
      throw new Error(`host scan worker ${slot} did not load within ${WORKER_TIMEOUT_MS} ms`);
    }
  }
}

/** Default thread count: the CPUs, at most 4 (beyond that /proc contention wins). */
export function defaultScanThreads(): number {
  return Math.max(1, Math.min(availableParallelism(), 4));
}

/** A worker must load, and a job it started finish, within this long, or the scan fails naming it. */
const WORKER_TIMEOUT_MS = 120_000;

/** scanHost() on `threads` threads (the caller's included); same result. */
export function scanHostParallel(
  targets: ScanTargets,
  exclude: ReadonlySet<number>,
  threads = defaultScanThreads(),
): HostScan {
  const url = workerScript();
  if (url === undefined || threads <= 1) return scanHost(targets, exclude);
  const start = performance.now();
  const pids = hostPids(exclude);
  const ws = workers(threads - 1, url);
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const state = new Int32Array(new SharedArrayBuffer(4 * ws.length));
  const job = { keys: [...targets.keys], anonLinks: [...targets.anonLinks], pids, exclude: [...exclude] };
  const ports = ws.map((w, slot) => {
    const { port1, port2 } = new MessageChannel();
    const msg: ScanJob = {
      ...job,
      counter: counter.buffer,
      state: state.buffer,
      slot,
      port: port2,
    };
    w.worker.postMessage(msg, [port2]);
    return port1;
  });
  const next = (): number => {
    const i = Atomics.add(counter, 0, 1);
    return i < pids.length ? i : -1;
  };
  const parts: ScanPart[] = [scanPids(targets, pids, exclude, next)];
  for (let slot = 0; slot < ws.length; slot++) {
    const port = ports[slot]!;
    try {
      // Not started yet: let it finish loading (see above), then cancel it: there is nothing left to take.
      if (Atomics.load(state, slot) === 0) awaitLoaded(ws[slot]!, slot);
      if (Atomics.compareExchange(state, slot, 0, 3) === 0) continue;
      const deadline = Date.now() + WORKER_TIMEOUT_MS;
      while (Atomics.load(state, slot) !== 2) {
        if (Atomics.wait(state, slot, 1, 1000) === 'timed-out' && Date.now() > deadline) {
          throw new Error(`host scan worker ${slot} did not finish within ${WORKER_TIMEOUT_MS} ms`);
        }
      }
      const reply = receiveMessageOnPort(port)?.message as ScanReply | undefined;
      if (reply === undefined) throw new Error(`host scan worker ${slot} finished without a result`);
      if ('error' in reply) throw new Error(`host scan worker ${slot}: ${reply.error}`);
      parts.push(reply.part);
    } finally {
      port.close();
    }
  }
  return {
    hits: parts.flatMap((p) => p.hits),
    unreadable: parts.flatMap((p) => p.unreadable),
    processes: parts.reduce((n, p) => n + p.processes, 0),
    fds: parts.reduce((n, p) => n + p.fds, 0),
    ms: performance.now() - start,
    threads: parts.length,
  };
}
