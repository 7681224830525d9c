/**
 * The webhook's own certificates: parsed and verified by node:crypto and by
 * openssl, and used for a real TLS handshake that checks the chain and name.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certsUsable, makeWebhookCerts } from '../../src/controller/webhook/certs.js';

const HOSTS = [
  'fdckpt-webhook.fdckpt-system.svc',
  'fdckpt-webhook.fdckpt-system.svc.cluster.local',
  '127.0.0.1',
];
const certs = makeWebhookCerts(HOSTS);
const dir = mkdtempSync(join(tmpdir(), 'fdckpt-certs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('webhook certificates', () => {
  it('are a CA and a serving certificate it issued, for the given names', () => {
    const ca = new X509Certificate(certs.ca.cert);
    const serving = new X509Certificate(certs.serving.cert);
    expect(ca.ca).toBe(true);
    expect(serving.ca).toBe(false);
    expect(ca.verify(ca.publicKey)).toBe(true);
    expect(serving.checkIssued(ca)).toBe(true);
    expect(serving.verify(ca.publicKey)).toBe(true);
    expect(serving.checkHost('fdckpt-webhook.fdckpt-system.svc')).toBe('fdckpt-webhook.fdckpt-system.svc');
    expect(serving.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(serving.checkHost('other.example')).toBeUndefined();
    expect(serving.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(certsUsable(certs, HOSTS)).toBe(true);
    expect(certsUsable(certs, ['another.svc'])).toBe(false);
    expect(certsUsable(certs, HOSTS, new Date(Date.now() + 350 * 86_400_000))).toBe(false);
    expect(certsUsable({ ...certs, ca: makeWebhookCerts(HOSTS).ca }, HOSTS)).toBe(false);
  });

  it('pass openssl verify (an independent X.509 implementation)', () => {
    const probe = spawnSync('openssl', ['version']);
    if (probe.status !== 0) {
      if (process.env['CI'] === 'true')
        throw new Error('openssl is missing: install it (apt-get install openssl)');
      process.stderr.write('certs.test: openssl not found, independent check SKIPPED\n');
      return;
    }
    writeFileSync(join(dir, 'ca.pem'), certs.ca.cert);
    writeFileSync(join(dir, 'serving.pem'), certs.serving.cert);
    const r = spawnSync(
      'openssl',
      [
        'verify',
        '-CAfile',
        join(dir, 'ca.pem'),
        '-purpose',
        'sslserver',
        '-verify_hostname',
        HOSTS[0]!,
        join(dir, 'serving.pem'),
      ],
      { encoding: 'utf8' },
    );
    expect(`${r.stdout}${r.stderr}`.trim()).toBe(`${join(dir, 'serving.pem')}: OK`);
  });

  it('serve TLS that a client trusting only the CA accepts', async () => {
    const server = createServer({ cert: certs.serving.cert, key: certs.serving.key }, (_req, res) =>
      res.end('ok'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const get = (ca: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, ca, path: '/' }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve(body));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      expect(await get(certs.ca.cert)).toBe('ok');
      await expect(get(makeWebhookCerts(HOSTS).ca.cert)).rejects.toThrow();
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
