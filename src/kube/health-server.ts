/**
 * The health and metrics endpoint of a component: /healthz (the process is
 * alive and its loops run), /readyz (it can do its job: caches synced, and for
 * the controller, leading or standing by), /metrics (Prometheus text).
 */
import { createServer } from 'node:http';
import type { Registry } from 'prom-client';

/** A check returns undefined when fine, or why not. */
export type Check = () => string | undefined;

export interface ServerOptions {
  port: number;
  host?: string;
  registry: Registry;
  healthz: Check;
  readyz: Check;
}

export interface RunningServer {
  port: number;
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const check = path === '/healthz' ? options.healthz : path === '/readyz' ? options.readyz : undefined;
    if (check) {
      const problem = check();
      res.writeHead(problem ? 503 : 200, { 'content-type': 'text/plain' });
      res.end(problem ? `${problem}\n` : 'ok\n');
      return;
    }
    if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': options.registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`${String(err)}\n`);
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
