/**
 * Kubeconfigs for the local control plane: one cluster (verified by its CA), one user, one
 * context, so that kubectl and client-node reach it exactly as they reach any cluster
 * (KubeConfig loadFromFile / KUBECONFIG).
 */
import { dump } from 'js-yaml';

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
