/**
 * The webhook's certificates, made by the project: a self-signed CA and a
 * serving certificate for the webhook Service's DNS names, ECDSA P-256 with
 * SHA-256 (RFC 5280 profile, RFC 5758 algorithms). Built with der.ts and
 * signed with node:crypto; read back and checked with X509Certificate.
 */
import { X509Certificate, createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { bits, bool, explicit, implicit, octets, oid, seq, set, time, uint, utf8 } from './der.js';

const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const CN = '2.5.4.3';
const EXT = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
} as const;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

/** PEM-encoded key pair and certificate. */
export interface PemCert {
  cert: string;
  key: string;
}

export interface WebhookCerts {
  ca: PemCert;
  serving: PemCert;
}

const name = (cn: string): Buffer => seq(set(seq(oid(CN), utf8(cn))));
const ext = (id: string, critical: boolean, value: Buffer): Buffer =>
  critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));

function keyId(key: KeyObject): Buffer {
  // RFC 5280 §4.2.1.2 method 1 hashes the key bits; hashing the whole SPKI is as unique.
  return createHash('sha1')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest();
}

function pem(label: string, der: Buffer): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

interface CertInput {
  subject: string;
  issuer: string;
  publicKey: KeyObject;
  signer: KeyObject;
  days: number;
  extensions: Buffer[];
  now: Date;
}

function certificate(i: CertInput): string {
  const notBefore = new Date(i.now.getTime() - 5 * 60_000); // clock skew between nodes
  const notAfter = new Date(i.now.getTime() + i.days * 86_400_000);
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const tbs = seq(
    explicit(0, uint(Buffer.from([2]))),
    uint(serial),
    ECDSA_SHA256,
    name(i.issuer),
    seq(time(notBefore), time(notAfter)),
    name(i.subject),
    i.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...i.extensions)),
  );
  const signature = sign('sha256', tbs, i.signer);
  return pem('CERTIFICATE', seq(tbs, ECDSA_SHA256, bits(signature)));
}

function sanEntry(host: string): Buffer {
  if (isIP(host) === 4) return implicit(7, Buffer.from(host.split('.').map(Number)));
  return implicit(2, Buffer.from(host, 'ascii'));
}

/** A CA (10 years) and a serving certificate for `hosts` (1 year) signed by it. */
export function makeWebhookCerts(hosts: readonly string[], now: Date = new Date()): WebhookCerts {
  if (hosts.length === 0) throw new Error('makeWebhookCerts: at least one DNS name is needed');
  const caKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
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
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const servingCert = certificate({
    subject: hosts[0] ?? '',
    issuer: 'fdckpt-webhook-ca',
    publicKey: keys.publicKey,
    signer: caKeys.privateKey,
    days: 365,
    now,
    extensions: [
      ext(EXT.basicConstraints, true, seq()),
      // digitalSignature (bit 0), 7 unused bits.
      ext(EXT.keyUsage, true, bits(Buffer.from([0x80]), 7)),
      ext(EXT.extKeyUsage, false, seq(oid(SERVER_AUTH))),
      ext(EXT.subjectAltName, false, seq(...hosts.map(sanEntry))),
      ext(EXT.authorityKeyId, false, seq(implicit(0, keyId(caKeys.publicKey)))),
    ],
  });
  const keyPem = (k: KeyObject): string => k.export({ type: 'pkcs8', format: 'pem' }).toString();
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
