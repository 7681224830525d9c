/**
 * X.509 certificates made by the project: ECDSA P-256 with SHA-256 (RFC 5280
 * profile, RFC 5758 algorithms), encoded with der.ts and signed with
 * node:crypto (Node 20 can read and verify a certificate, not create one).
 * Used by the webhook's CA and serving certificate and by each agent's
 * self-signed image-transfer certificate.
 */
import { X509Certificate, createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { bits, bool, explicit, implicit, octets, oid, seq, set, time, uint, utf8 } from './der.js';

const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const CN = '2.5.4.3';
const O = '2.5.4.10';
export const EXT = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
} as const;
export const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/**
 * A certificate's subject or issuer: a common name, or a common name with
 * organizations (Kubernetes reads a client certificate's O as its groups).
 */
export type DistinguishedName = string | { cn: string; o?: readonly string[] };

/** PEM-encoded key pair and certificate. */
export interface PemCert {
  cert: string;
  key: string;
}

function name(dn: DistinguishedName): Buffer {
  const { cn, o = [] } = typeof dn === 'string' ? { cn: dn } : dn;
  // One RDN per attribute, organizations first, as openssl and Go's x509 write them.
  return seq(...o.map((org) => set(seq(oid(O), utf8(org)))), set(seq(oid(CN), utf8(cn))));
}

/** One extension; `value` is its DER, wrapped in the OCTET STRING here. */
export const ext = (id: string, critical: boolean, value: Buffer): Buffer =>
  critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));

export function keyId(key: KeyObject): Buffer {
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

export const keyPem = (k: KeyObject): string => k.export({ type: 'pkcs8', format: 'pem' }).toString();

export const newKeyPair = (): { publicKey: KeyObject; privateKey: KeyObject } =>
  generateKeyPairSync('ec', { namedCurve: 'P-256' });

export interface CertInput {
  subject: DistinguishedName;
  issuer: DistinguishedName;
  publicKey: KeyObject;
  signer: KeyObject;
  days: number;
  extensions: Buffer[];
  now: Date;
}

/** A signed certificate, PEM. */
export function certificate(i: CertInput): string {
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

/** A subjectAltName entry: iPAddress for an IPv4 literal, else dNSName. */
export function sanEntry(host: string): Buffer {
  if (isIP(host) === 4) return implicit(7, Buffer.from(host.split('.').map(Number)));
  return implicit(2, Buffer.from(host, 'ascii'));
}

/** The extensions of an end-entity serving certificate (no CA, digitalSignature, serverAuth). */
export function servingExtensions(hosts: readonly string[]): Buffer[] {
  return [
    ext(EXT.basicConstraints, true, seq()),
    // digitalSignature (bit 0), 7 unused bits.
    ext(EXT.keyUsage, true, bits(Buffer.from([0x80]), 7)),
    ext(EXT.extKeyUsage, false, seq(oid(SERVER_AUTH))),
    ...(hosts.length ? [ext(EXT.subjectAltName, false, seq(...hosts.map(sanEntry)))] : []),
  ];
}

/**
 * A self-signed serving certificate with a fresh key: for a peer that is
 * trusted by its fingerprint (pinned), not by a chain, so there is no CA.
 */
export function selfSignedCert(subject: string, days: number, now: Date = new Date()): PemCert {
  const keys = newKeyPair();
  const cert = certificate({
    subject,
    issuer: subject,
    publicKey: keys.publicKey,
    signer: keys.privateKey,
    days,
    now,
    extensions: servingExtensions([]),
  });
  return { cert, key: keyPem(keys.privateKey) };
}

/** SHA-256 of a certificate's DER, lowercase hex without separators: what a pin holds. */
export function certSha256(certPem: string | Buffer): string {
  const raw = typeof certPem === 'string' ? new X509Certificate(certPem).raw : certPem;
  return createHash('sha256').update(raw).digest('hex');
}
