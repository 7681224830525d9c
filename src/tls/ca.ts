/**
 * A small certificate authority built on x509.ts: a self-signed CA and the
 * certificates it issues — serving (with subjectAltNames), client (with
 * organizations, which Kubernetes reads as groups), or both. Used by the
 * webhook's certificates and by the local control plane's PKI.
 */
import type { KeyObject } from 'node:crypto';
import { bits, bool, implicit, octets, oid, seq } from './der.js';
import type { DistinguishedName, PemCert } from './x509.js';
import {
  CLIENT_AUTH,
  EXT,
  SERVER_AUTH,
  certificate,
  ext,
  keyId,
  keyPem,
  newKeyPair,
  sanEntry,
} from './x509.js';

/** A CA: its certificate (PEM) and the private key that signs with it. */
export interface CertificateAuthority {
  cert: string;
  key: KeyObject;
  subject: DistinguishedName;
  keyId: Buffer;
}

/** A self-signed CA certificate with a fresh P-256 key. */
export function makeCa(
  subject: DistinguishedName,
  days: number,
  now: Date = new Date(),
): CertificateAuthority {
  const keys = newKeyPair();
  const id = keyId(keys.publicKey);
  const cert = certificate({
    subject,
    issuer: subject,
    publicKey: keys.publicKey,
    signer: keys.privateKey,
    days,
    now,
    extensions: [
      ext(EXT.basicConstraints, true, seq(bool(true))),
      // keyCertSign (bit 5) and cRLSign (bit 6): 0b0000011 with 1 unused bit.
      ext(EXT.keyUsage, true, bits(Buffer.from([0x06]), 1)),
      ext(EXT.subjectKeyId, false, octets(id)),
    ],
  });
  return { cert, key: keys.privateKey, subject, keyId: id };
}

/** What an issued certificate is for. */
export interface IssueRequest {
  subject: DistinguishedName;
  days: number;
  /** DNS names and IPv4 literals it serves; none means not a serving certificate. */
  serves?: readonly string[];
  /** Whether it authenticates a client. */
  client?: boolean;
  now?: Date;
}

/** An end-entity certificate with a fresh key, signed by `ca`. */
export function issue(ca: CertificateAuthority, req: IssueRequest): PemCert {
  const serves = req.serves ?? [];
  const usages = [...(serves.length ? [SERVER_AUTH] : []), ...(req.client ? [CLIENT_AUTH] : [])];
  if (usages.length === 0) throw new Error('issue: a certificate must serve a host or authenticate a client');
  const keys = newKeyPair();
  const cert = certificate({
    subject: req.subject,
    issuer: ca.subject,
    publicKey: keys.publicKey,
    signer: ca.key,
    days: req.days,
    now: req.now ?? new Date(),
    extensions: [
      ext(EXT.basicConstraints, true, seq()),
      // digitalSignature (bit 0), 7 unused bits.
      ext(EXT.keyUsage, true, bits(Buffer.from([0x80]), 7)),
      ext(EXT.extKeyUsage, false, seq(...usages.map((u) => oid(u)))),
      ...(serves.length ? [ext(EXT.subjectAltName, false, seq(...serves.map(sanEntry)))] : []),
      ext(EXT.authorityKeyId, false, seq(implicit(0, ca.keyId))),
    ],
  });
  return { cert, key: keyPem(keys.privateKey) };
}
