/**
 * The webhook's certificates, made by the project: a self-signed CA and a
 * serving certificate for the webhook Service's DNS names, ECDSA P-256 with
 * SHA-256, built with src/tls/ca.ts (the project's DER encoder and CA) and
 * node:crypto; read back and checked with X509Certificate.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { issue, makeCa } from '../../tls/ca.js';
import type { PemCert } from '../../tls/x509.js';
import { keyPem } from '../../tls/x509.js';

export type { PemCert } from '../../tls/x509.js';

export interface WebhookCerts {
  ca: PemCert;
  serving: PemCert;
}

/** A CA (10 years) and a serving certificate for `hosts` (1 year) signed by it. */
export function makeWebhookCerts(hosts: readonly string[], now: Date = new Date()): WebhookCerts {
  if (hosts.length === 0) throw new Error('makeWebhookCerts: at least one DNS name is needed');
  const ca = makeCa('fdckpt-webhook-ca', 3650, now);
  const serving = issue(ca, { subject: hosts[0] ?? '', days: 365, serves: hosts, now });
  return { ca: { cert: ca.cert, key: keyPem(ca.key) }, serving };
}

/**
 * Whether stored certificates can still be used for `hosts`: parseable, the
 * serving one issued by the CA, covering every host, valid for `marginDays` more.
 */
export function certsUsable(
  c: WebhookCerts,
  hosts: readonly string[],
  now = new Date(),
  marginDays = 30,
): boolean {
  try {
    const ca = new X509Certificate(c.ca.cert);
    const serving = new X509Certificate(c.serving.cert);
    if (!serving.checkIssued(ca) || !serving.verify(ca.publicKey)) return false;
    const until = now.getTime() + marginDays * 86_400_000;
    if (Date.parse(serving.validTo) < until || Date.parse(ca.validTo) < until) return false;
    return hosts.every((h) => (isIP(h) ? serving.checkIP(h) : serving.checkHost(h)) !== undefined);
  } catch {
    return false;
  }
}
