/**
 * The process kubelet's own API, the part the API server uses: `kubectl logs` reaches
 * kube-apiserver, which proxies pods/log to `GET /containerLogs/NS/POD/CONTAINER` on the
 * node's kubelet (the address and port the Node's status gives). Served over HTTPS with a
 * certificate the cluster CA signed; a client must present a certificate from the same
 * CA (the API server's kubelet-client certificate). Supports previous, tailLines,
 * limitBytes and follow, as the kubelet does.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PemCert } from '../../tls/x509.js';
import { containerLogFile } from '../nodefiles.js';

/** What the server needs to know of one container's runs. */
export interface LogSource {
  /** The pod's log directory, or undefined if the pod is not on this node. */
  podLogDir(namespace: string, pod: string): string | undefined;
  /** The container's current run (its restart count), or undefined if it has none. */
  currentRun(namespace: string, pod: string, container: string): number | undefined;
  /** Whether run `run` of the container is still going (more may be written). */
  running(namespace: string, pod: string, container: string, run: number): boolean;
}

/** Options of {@link startLogServer}. */
export interface LogServerOptions {
  tls: PemCert;
  /** CA (PEM) whose client certificates are accepted. */
  clientCa: string;
  port?: number;
  source: LogSource;
}

/** A running kubelet API server. */
export interface LogServer {
  port: number;
  close(): Promise<void>;
}

/** The most a single answer reads into memory; longer logs are answered from their end. */
const MAX_READ = 16 * 1024 * 1024;

function fail(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain' });
  res.end(message);
}

function readFrom(file: string, offset: number, max: number): Buffer {
  const size = statSync(file).size;
  const start = Math.max(offset, size - max);
  if (size <= start) return Buffer.alloc(0);
  const buf = Buffer.alloc(size - start);
  const fd = openSync(file, 'r');
  try {
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, start));
  } finally {
    closeSync(fd);
  }
}

function tailLines(text: Buffer, n: number): Buffer {
  if (n <= 0) return Buffer.alloc(0);
  let end = text.length;
  if (end > 0 && text[end - 1] === 0x0a) end--;
  let i = end;
  for (let seen = 0; i > 0; i--) if (text[i - 1] === 0x0a && ++seen === n) break;
  return text.subarray(i);
}

function handle(source: LogSource, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'https://kubelet');
  if (url.pathname === '/healthz') return fail(res, 200, 'ok');
  const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
  if (!m || req.method !== 'GET') return fail(res, 404, `not found: ${url.pathname}`);
  const [ns, pod, container] = [m[1]!, m[2]!, m[3]!].map(decodeURIComponent) as [string, string, string];
  const dir = source.podLogDir(ns, pod);
  const current = source.currentRun(ns, pod, container);
  if (dir === undefined || current === undefined)
    return fail(res, 400, `container "${container}" in pod "${pod}" is waiting to start`);
  const q = url.searchParams;
  const run = q.get('previous') === 'true' ? current - 1 : current;
  if (run < 0)
    return fail(res, 400, `previous terminated container "${container}" in pod "${pod}" not found`);
  const file = containerLogFile(dir, container, run);
  let text: Buffer;
  try {
    text = readFrom(file, 0, MAX_READ);
  } catch {
    return fail(res, 400, `container "${container}" in pod "${pod}" is waiting to start`);
  }
  let offset = statSync(file).size;
  const tail = q.get('tailLines');
  if (tail !== null) text = tailLines(text, Number(tail));
  const limit = q.get('limitBytes');
  if (limit !== null) text = text.subarray(0, Math.max(0, Number(limit)));
  if (q.get('follow') !== 'true' || !source.running(ns, pod, container, run)) {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(text);
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
  res.write(text);
  const drain = (): void => {
    try {
      const more = readFrom(file, offset, MAX_READ);
      offset += more.length;
      if (more.length) res.write(more);
    } catch {
      // The log went with the pod: nothing more to send.
    }
  };
  const timer = setInterval(() => {
    const over = !source.running(ns, pod, container, run);
    drain();
    if (over) stop();
  }, 100);
  const stop = (): void => {
    clearInterval(timer);
    res.end();
  };
  res.on('close', () => clearInterval(timer));
}

/** Starts the kubelet's HTTPS API on 127.0.0.1. */
export async function startLogServer(opts: LogServerOptions): Promise<LogServer> {
  const server: Server = createServer(
    {
      cert: opts.tls.cert,
      key: opts.tls.key,
      ca: opts.clientCa,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => handle(opts.source, req, res),
  );
  // Bounded like every server of ours: the API server keeps few connections open.
  server.maxConnections = 256;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
