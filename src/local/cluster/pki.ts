/**
 * The local cluster's PKI, made fresh for each cluster the way envtest makes its own: one
 * CA that signs the API server's serving certificate, every component's client
 * certificate (Kubernetes takes the CN as the user and each O as a group) and each
 * kubelet's serving certificate, plus the ServiceAccount token signing key. All files go
 * under one directory, private keys with mode 0600. The API server also gets a client
 * certificate to present to admission webhooks, so that a webhook can tell it from anyone
 * else who reaches its port.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issue, makeCa, type CertificateAuthority } from '../../tls/ca.js';
import type { DistinguishedName, PemCert } from '../../tls/x509.js';
import { dump } from 'js-yaml';
import { credentialKubeconfigYaml } from '../kubeconfig.js';

/** Files of a certificate and its key on disk. */
export interface CertFiles {
  cert: string;
  key: string;
}

/** The API server's in-cluster names: what a pod's client dials through the kubernetes Service. */
const API_SERVER_NAMES = [
  '127.0.0.1',
  'localhost',
  'kubernetes',
  'kubernetes.default',
  'kubernetes.default.svc',
  'kubernetes.default.svc.cluster.local',
  // The first address of --service-cluster-ip-range (10.0.0.0/24).
  '10.0.0.1',
];

const DAYS = 30;

/** The subject the API server presents to admission webhooks (the controller's pod webhook checks it). */
export const WEBHOOK_CLIENT_CN = 'kube-apiserver-webhook-client';

/** A cluster's CA, with helpers that write what it issues under `dir`. */
export class ClusterPki {
  readonly ca: CertificateAuthority;
  readonly caFile: string;
  /** The ServiceAccount token signing key (P-256) and its public half. */
  readonly serviceAccountKey: CertFiles;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.ca = makeCa({ cn: 'fdckpt-local-ca', o: ['fdckpt'] }, DAYS);
    this.caFile = this.write('ca.crt', this.ca.cert);
    const sa = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.serviceAccountKey = {
      cert: this.write('sa.pub', sa.publicKey.export({ type: 'spki', format: 'pem' }).toString()),
      key: this.write('sa.key', sa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600),
    };
  }

  private write(name: string, content: string, mode = 0o644): string {
    const path = join(this.dir, name);
    writeFileSync(path, content, { mode });
    return path;
  }

  private save(name: string, pem: PemCert): CertFiles & PemCert {
    return {
      ...pem,
      cert: this.write(`${name}.crt`, pem.cert),
      key: this.write(`${name}.key`, pem.key, 0o600),
    };
  }

  /** The API server's serving certificate. */
  apiServerServing(): CertFiles {
    return this.save(
      'apiserver',
      issue(this.ca, { subject: 'kube-apiserver', days: DAYS, serves: API_SERVER_NAMES }),
    );
  }

  /**
   * A serving certificate for a kubelet on 127.0.0.1 and on `addresses` (a real node's
   * own address); the API server verifies it with the CA.
   */
  kubeletServing(nodeName: string, addresses: readonly string[] = []): PemCert {
    const serves = ['127.0.0.1', 'localhost', nodeName, ...addresses];
    return issue(this.ca, { subject: nodeName, days: DAYS, serves });
  }

  /** A client certificate for `subject`, written as `<file>.crt/.key`; returns the PEMs. */
  client(file: string, subject: DistinguishedName): PemCert & { certFile: string; keyFile: string } {
    const pem = issue(this.ca, { subject, days: DAYS, client: true });
    const files = this.save(file, pem);
    return { cert: pem.cert, key: pem.key, certFile: files.cert, keyFile: files.key };
  }

  /**
   * kube-apiserver's --admission-control-config-file: an AdmissionConfiguration whose
   * webhook plugins read a kubeconfig with one user, `*` (every webhook host: a URL's
   * host:port, a Service's <name>.<namespace>.svc), holding a client certificate for
   * WEBHOOK_CLIENT_CN signed by this CA. Returns the file's path.
   */
  webhookAdmissionConfig(): string {
    const c = this.client('apiserver-webhook-client', WEBHOOK_CLIENT_CN);
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    const kubeconfig = this.write(
      'webhook-client.kubeconfig',
      dump({
        apiVersion: 'v1',
        kind: 'Config',
        users: [
          { name: '*', user: { 'client-certificate-data': b64(c.cert), 'client-key-data': b64(c.key) } },
        ],
      }),
      0o600,
    );
    const webhooks = {
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'WebhookAdmissionConfiguration',
      kubeConfigFile: kubeconfig,
    };
    return this.write(
      'admission.yaml',
      dump({
        apiVersion: 'apiserver.config.k8s.io/v1',
        kind: 'AdmissionConfiguration',
        plugins: ['MutatingAdmissionWebhook', 'ValidatingAdmissionWebhook'].map((name) => ({
          name,
          configuration: webhooks,
        })),
      }),
    );
  }

  /** A kubeconfig file for `subject` authenticating with a fresh client certificate. */
  clientKubeconfig(path: string, server: string, file: string, subject: DistinguishedName): string {
    const c = this.client(file, subject);
    const user = typeof subject === 'string' ? subject : subject.cn;
    writeFileSync(path, credentialKubeconfigYaml(server, this.ca.cert, user, c), { mode: 0o600 });
    return path;
  }
}
