/**
 * The webhook's certificates, made by the project: a self-signed CA and a
 * serving certificate for the webhook Service's DNS names, ECDSA P-256 with
 * SHA-256, built with src/tls/x509.ts (the project's DER encoder) and
 * node:crypto; read back and checked with X509Certificate.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { bits, bool, implicit, octets, seq } from '../../tls/der.js';
import type { PemCert } from '../../tls/x509.js';
import { EXT, certificate, ext, keyId, keyPem, newKeyPair, servingExtensions } from '../../tls/x509.js';

export type { PemCert } from '../../tls/x509.js';

export interface WebhookCerts {
  ca: PemCert;
  serving: PemCert;
}

/** A CA (10 years) and a serving certificate for `hosts` (1 year) signed by it. */
export function makeWebhookCerts(hosts: readonly string[], now: Date = new Date()): WebhookCerts {
  if (hosts.length === 0) throw new Error('makeWebhookCerts: at least one DNS name is needed');
  const caKeys = newKeyPair();
  const caCert = certificate({
    subject: 'fdckpt-webhook-ca',
    issuer: 'fdckpt-webhook-ca',
    publicKey: caKeys.publicKey,
    signer: caKeys.privateKey,
    days: 3650,
    now,
    extensions: [
      ext(EXT.basicConstraints, true, seq(bool(true))),
      // keyCertSign (bit 5) and cRLSign (bit 6): 0b0000011 with 1 unused bit.
      ext(EXT.keyUsage, true, bits(Buffer.from([0x06]), 1)),
      ext(EXT.subjectKeyId, false, octets(keyId(caKeys.publicKey))),
    ],
  });
  const keys = newKeyPair();
  const servingCert = certificate({
    subject: hosts[0] ?? '',
    issuer: 'fdckpt-webhook-ca',
    publicKey: keys.publicKey,
    signer: caKeys.privateKey,
    days: 365,
    now,
    extensions: [
      ...servingExtensions(hosts),
      ext(EXT.authorityKeyId, false, seq(implicit(0, keyId(caKeys.publicKey)))),
    ],
  });
  return {
    ca: { cert: caCert, key: keyPem(caKeys.privateKey) },
    serving: { cert: servingCert, key: keyPem(keys.privateKey) },
  };
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
