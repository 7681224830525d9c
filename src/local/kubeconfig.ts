/**
 * The kubeconfig for the local control plane: one cluster, one user, one context, so that
 * kubectl and client-node reach it exactly as they reach a real cluster (KubeConfig
 * loadFromFile / KUBECONFIG), only over plain HTTP on loopback.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { dump } from 'js-yaml';

/** The kubeconfig document for a server URL (and its CA certificate, PEM, when TLS is on). */
export function kubeconfigYaml(server: string, caCert?: string, name = 'fdckpt-local'): string {
  // client-node 1.4 refuses an http:// server unless TLS verification is marked skipped;
  // kubectl accepts the flag too. There is no TLS to verify on loopback HTTP. With TLS the
  // server's certificate is the authority, verified as on a real cluster.
  const cluster = caCert
    ? { server, 'certificate-authority-data': Buffer.from(caCert).toString('base64') }
    : { server, 'insecure-skip-tls-verify': server.startsWith('http://') };
  return dump({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster }],
    users: [{ name: `${name}-admin`, user: { token: 'fdckpt-local-development-harness' } }],
    contexts: [{ name, context: { cluster: name, user: `${name}-admin`, namespace: 'default' } }],
    'current-context': name,
    preferences: {},
  });
}

/** Writes the kubeconfig to `path` (mode 0600, parent directories created). */
export function writeKubeconfig(path: string, server: string, caCert?: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, kubeconfigYaml(server, caCert), { mode: 0o600 });
}

/**
 * A client-node KubeConfig for a local API server URL, loaded from the same document the
 * kubeconfig file holds (for tests and in-process components that have no file).
 */
export function kubeConfigFor(url: string, caCert?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigYaml(url, caCert));
  return kc;
}

/** How a kubeconfig's user authenticates: a bearer token or a client certificate (PEM). */
export type KubeCredentials = { token: string } | { cert: string; key: string };

/** A kubeconfig for a TLS server verified by its CA, with the given credentials. */
export function credentialKubeconfigYaml(
  server: string,
  caCert: string,
  user: string,
  credentials: KubeCredentials,
  namespace = 'default',
): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const auth =
    'token' in credentials
      ? { token: credentials.token }
      : { 'client-certificate-data': b64(credentials.cert), 'client-key-data': b64(credentials.key) };
  return dump({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'fdckpt-local', cluster: { server, 'certificate-authority-data': b64(caCert) } }],
    users: [{ name: user, user: auth }],
    contexts: [{ name: 'fdckpt-local', context: { cluster: 'fdckpt-local', user, namespace } }],
    'current-context': 'fdckpt-local',
    preferences: {},
  });
}
