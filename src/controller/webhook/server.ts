/**
 * The mutating admission webhook endpoint (HTTPS, served by the controller):
 * POST /mutate-pods with an AdmissionReview (admission.k8s.io/v1). It never
 * denies: a pod it does not recognise is allowed unchanged, and an error is
 * logged and the pod allowed (the Migration then times out and rolls back),
 * so that the webhook can never block a cluster's pods.
 *
 * With `clientAuth` it serves only the API server: the caller must present a
 * client certificate signed by the given CA (the API server's, from its
 * AdmissionConfiguration kubeconfig), else 401 (403 for a subject not listed)
 * before its body is read. Without it anyone who reaches the port may POST a
 * review (the weaker mode: podMutator's claim grace then bounds the harm).
 */
import { createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { V1Pod } from '@kubernetes/client-node';
import type { PemCert } from './certs.js';
import type { JsonPatchOp } from './mutate.js';

export const MUTATE_PODS_PATH = '/mutate-pods';

export interface AdmissionRequest {
  uid: string;
  operation?: string;
  namespace?: string;
  kind?: { group?: string; version?: string; kind?: string };
  object?: V1Pod;
}

export interface WebhookServerOptions {
  port: number;
  host?: string;
  serving: PemCert;
  /** The patch for a pod being created, or undefined to let it pass as it is. */
  mutate: (pod: V1Pod, namespace: string) => Promise<JsonPatchOp[] | undefined>;
  /** Require the API server's client certificate; absent, any caller is served. */
  clientAuth?: ClientAuth;
  onError?: (message: string) => void;
  /** A caller refused by `clientAuth` (who, and why). */
  onRefused?: (message: string) => void;
}

/** Which callers the webhook serves: those with a client certificate from `ca`. */
export interface ClientAuth {
  /** PEM: the CA (or CAs) that sign the API server's webhook client certificate. */
  ca: string;
  /** Subject CNs accepted; absent or empty: any certificate `ca` signed. */
  allowedNames?: readonly string[];
}

export interface RunningWebhook {
  port: number;
  close(): Promise<void>;
}

/**
 * Largest AdmissionReview body read: kube-apiserver's own request limit (3 MiB);
 * a pod is far smaller. The controller's memory limit is 256 Mi: an unbounded
 * body (a 450 MB POST once took it to 1 GB) is the whole controller.
 */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

class BodyTooLarge extends Error {}

/**
 * The body as text, or BodyTooLarge once past `limit`. Events rather than an async
 * iterator: leaving one early destroys the socket, and the 413 with it; here the
 * stream keeps flowing and what comes after the limit is dropped.
 */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > limit) {
      reject(new BodyTooLarge(`body of ${declared} bytes: at most ${limit}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      req.off('data', onData);
      chunks.length = 0;
      reject(new BodyTooLarge(`body over ${limit} bytes`));
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

/** The AdmissionReview's request if the body has the shape this webhook reads, else why not. */
export function admissionRequest(doc: unknown): AdmissionRequest | string {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    return 'body is not an AdmissionReview object';
  const review = doc as { kind?: unknown; request?: unknown };
  if (review.kind !== undefined && review.kind !== 'AdmissionReview')
    return `kind ${JSON.stringify(review.kind)}: not an AdmissionReview`;
  const r = review.request;
  if (typeof r !== 'object' || r === null || Array.isArray(r))
    return 'request is missing: not an AdmissionReview';
  const request = r as Record<string, unknown>;
  if (typeof request['uid'] !== 'string' || request['uid'] === '')
    return 'request.uid is missing: not an AdmissionReview';
  for (const key of ['operation', 'namespace'] as const) {
    if (request[key] !== undefined && typeof request[key] !== 'string')
      return `request.${key} must be a string`;
  }
  for (const key of ['kind', 'object'] as const) {
    const v = request[key];
    if (v !== undefined && v !== null && (typeof v !== 'object' || Array.isArray(v)))
      return `request.${key} must be an object`;
  }
  const object = request['object'] as { metadata?: unknown; spec?: unknown } | null | undefined;
  if (object) {
    for (const key of ['metadata', 'spec'] as const) {
      const v = object[key];
      if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v)))
        return `request.object.${key} must be an object`;
    }
  }
  return { ...(request as unknown as AdmissionRequest), object: object ?? undefined } as AdmissionRequest;
}

/** Why the caller on `socket` is not served under `auth`, or undefined if it is. */
export function callerRefusal(
  socket: TLSSocket,
  auth: ClientAuth,
): { code: 401 | 403; why: string } | undefined {
  const cert = socket.getPeerCertificate();
  // An empty object when the client sent none.
  const cn = cert && 'subject' in cert ? cert.subject?.CN : undefined;
  const names = ([] as string[]).concat(cn ?? []);
  if (!socket.authorized) {
    if (!cert || !('subject' in cert)) return { code: 401, why: 'no client certificate' };
    const err = socket.authorizationError;
    const reason = err instanceof Error ? err.message : String(err ?? 'not verified');
    return { code: 401, why: `client certificate CN=${names.join(',')} refused: ${reason}` };
  }
  const allowed = auth.allowedNames ?? [];
  if (allowed.length > 0 && !names.some((n) => allowed.includes(n)))
    return { code: 403, why: `client certificate CN=${names.join(',')} is not one of ${allowed.join(', ')}` };
  return undefined;
}

function send(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function handle(o: WebhookServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const refused = o.clientAuth && callerRefusal(req.socket as TLSSocket, o.clientAuth);
  if (refused) {
    // Refused before the body is read: nothing a stranger sends reaches the mutation.
    o.onRefused?.(`webhook: refused ${req.socket.remoteAddress ?? '?'}: ${refused.why}`);
    res.setHeader('connection', 'close');
    send(res, refused.code, { message: refused.why });
    req.resume();
    return;
  }
  if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== MUTATE_PODS_PATH) {
    return send(res, 404, { message: `no route ${req.method ?? ''} ${req.url ?? ''}` });
  }
  let text: string;
  try {
    text = await readBody(req, MAX_BODY_BYTES);
  } catch (err) {
    if (!(err instanceof BodyTooLarge)) throw err;
    // Answer, then discard the rest unread into memory (closing at once would
    // reset the connection before the client reads the answer); requestTimeout
    // bounds how long a client may keep sending.
    res.setHeader('connection', 'close');
    send(res, 413, { message: err.message });
    req.resume();
    return;
  }
  let review: unknown;
  try {
    review = JSON.parse(text) as unknown;
  } catch (err) {
    return send(res, 400, { message: `body is not JSON: ${(err as Error).message}` });
  }
  const request = admissionRequest(review);
  if (typeof request === 'string') return send(res, 400, { message: request });
  const apiVersion = (review as { apiVersion?: unknown }).apiVersion;
  const response: Record<string, unknown> = { uid: request.uid, allowed: true };
  if (request.operation === 'CREATE' && request.kind?.kind === 'Pod' && request.object) {
    try {
      const patch = await o.mutate(
        request.object,
        request.namespace ?? request.object.metadata?.namespace ?? '',
      );
      if (patch?.length) {
        response['patchType'] = 'JSONPatch';
        response['patch'] = Buffer.from(JSON.stringify(patch)).toString('base64');
      }
    } catch (err) {
      o.onError?.(
        `webhook: pod ${request.object.metadata?.generateName ?? request.object.metadata?.name ?? ''}: ${(err as Error).message}`,
      );
    }
  }
  send(res, 200, {
    apiVersion: typeof apiVersion === 'string' ? apiVersion : 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response,
  });
}

export async function startWebhookServer(o: WebhookServerOptions): Promise<RunningWebhook> {
  // The API server's own webhook timeout is 10 s at most (30 s max allowed): a request
  // that takes longer to arrive is nobody's AdmissionReview.
  const limits = { headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 2_000 };
  // The certificate is checked per request rather than by a failed handshake, so that a
  // refused caller is told why and the log says who it was.
  const clientAuth = o.clientAuth
    ? { requestCert: true, rejectUnauthorized: false, ca: o.clientAuth.ca }
    : {};
  const tls = { ...limits, ...clientAuth, cert: o.serving.cert, key: o.serving.key };
  const server = createServer(tls, (req, res) => {
    handle(o, req, res).catch((err: unknown) => {
      o.onError?.(`webhook: ${String(err)}`);
      if (!res.headersSent) send(res, 500, { message: String(err) });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '0.0.0.0', () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : o.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
