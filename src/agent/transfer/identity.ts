/**
 * An agent's identity on the image-transfer channel: a P-256 key and a
 * self-signed certificate, whose SHA-256 the agent publishes on its Node for
 * other agents to pin (the API server is the trust root, not a CA).
 *
 * Kept in a directory (0700, files 0600) rather than remade at every start:
 * an agent restarted by its DaemonSet then keeps its fingerprint, so a fetch
 * that was cut by the restart resumes against the pin it already has instead
 * of meeting a new certificate before the Node annotation is updated.
 * Without a directory the identity lives in memory only.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PemCert } from '../../tls/x509.js';
import { certSha256, selfSignedCert } from '../../tls/x509.js';

export interface TransferIdentity extends PemCert {
  /** SHA-256 of the certificate's DER, lowercase hex: the pin. */
  sha256: string;
}

const DAYS = 365;
/** A certificate expiring within this margin is replaced at start. */
const MARGIN_DAYS = 30;

function usable(c: PemCert, now: Date): boolean {
  try {
    const x = new X509Certificate(c.cert);
    return (
      x.checkPrivateKey(createPrivateKey(c.key)) &&
      Date.parse(x.validTo) > now.getTime() + MARGIN_DAYS * 86_400_000
    );
  } catch {
    return false;
  }
}

async function readPair(dir: string): Promise<PemCert | undefined> {
  try {
    return {
      cert: await readFile(join(dir, 'transfer.crt'), 'utf8'),
      key: await readFile(join(dir, 'transfer.key'), 'utf8'),
    };
  } catch {
    return undefined;
  }
}

async function writePrivate(path: string, text: string): Promise<void> {
  // Written aside then renamed: a crash never leaves a half key that would be read back.
  await writeFile(`${path}.tmp`, text, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}

/** The identity kept in `dir` if still good, else a new one (written there when `dir` is given). */
export async function transferIdentity(
  subject: string,
  dir?: string,
  now: Date = new Date(),
): Promise<TransferIdentity> {
  const kept = dir ? await readPair(dir) : undefined;
  if (kept && usable(kept, now)) return { ...kept, sha256: certSha256(kept.cert) };
  const made = selfSignedCert(subject, DAYS, now);
  if (dir) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writePrivate(join(dir, 'transfer.key'), made.key);
    await writePrivate(join(dir, 'transfer.crt'), made.cert);
  }
  return { ...made, sha256: certSha256(made.cert) };
}
