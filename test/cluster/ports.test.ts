/**
 * Component ports: drawn outside the kernel's ephemeral range, and a component that loses
 * its port to another process between choice and bind is started again on other ports
 * (CI once failed with kube-apiserver's "bind: address already in use").
 */
import { createServer, type Server } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startComponent, startOnFreePorts } from '../../src/local/cluster/component.js';

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

// A tiny HTTP server that answers /health, failing as Go servers do when the port is taken.
const SERVER = `
const http = require('node:http');
const s = http.createServer((q, r) => r.end('ok'));
s.on('error', (e) => { console.error('listen tcp: bind: ' + (e.code === 'EADDRINUSE' ? 'address already in use' : e.message)); process.exit(1); });
s.listen(Number(process.argv[1]), '127.0.0.1');
`;

describe('component ports', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'fdckpt-ports-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('freePort returns a bindable port below the ephemeral range', async () => {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    for (let i = 0; i < 20; i++) {
      const port = await freePort();
      expect(port).toBeLessThan(low!);
      (await listen(port)).close();
    }
  });

  it('a component whose port was taken is started again on another port', async () => {
    const taken = await listen(await freePort());
    const takenPort = (taken.address() as { port: number }).port;
    const attempts: number[] = [];
    try {
      const r = await startOnFreePorts(
        1,
        ([port], attempt) => {
          // The first attempt is handed the port someone else already holds.
          const use = attempt === 1 ? takenPort : port!;
          attempts.push(use);
          const component = startComponent(
            'toy',
            process.execPath,
            ['-e', SERVER, String(use)],
            join(dir, `toy.${attempt}.log`),
          );
          return { component, probe: { url: `http://127.0.0.1:${use}/health` }, result: { port: use } };
        },
        20_000,
      );
      expect(attempts.length).toBe(2);
      expect(r.port).not.toBe(takenPort);
      await r.component.stop();
    } finally {
      taken.close();
    }
  });

  it('a component that fails for another reason is not retried', async () => {
    let calls = 0;
    await expect(
      startOnFreePorts(
        1,
        ([port]) => {
          calls++;
          const component = startComponent(
            'broken',
            process.execPath,
            ['-e', 'console.error("bad flag"); process.exit(2)'],
            join(dir, 'broken.log'),
          );
          return { component, probe: { url: `http://127.0.0.1:${port}/health` }, result: {} };
        },
        20_000,
      ),
    ).rejects.toThrow(/broken exited with status 2 before it was ready:\n.*bad flag/s);
    expect(calls).toBe(1);
  });
});
