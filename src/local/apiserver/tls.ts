/**
 * Optional TLS for the API double: a fresh self-signed certificate for 127.0.0.1 and
 * localhost, made with the openssl command (Node cannot make certificates itself). The
 * kubeconfig then carries it as certificate-authority-data, so clients verify the server
 * exactly as they verify a real cluster's.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A PEM key and certificate. */
export interface ServingCert {
  key: string;
  cert: string;
}

/** Makes a self-signed serving certificate (P-256, 30 days) with openssl. */
export function makeServingCert(): ServingCert {
  const dir = mkdtempSync(join(tmpdir(), 'fdckpt-tls-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '30',
          '-subj',
          '/CN=fdckpt-local-apiserver',
          '-addext',
          'subjectAltName=IP:127.0.0.1,DNS:localhost',
          '-keyout',
          keyFile,
          '-out',
          certFile,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
    } catch (e) {
      throw new Error(
        `TLS for the local control plane needs the openssl command: ${(e as Error).message.split('\n')[0]}`,
      );
    }
    return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
