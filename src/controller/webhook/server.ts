/**
 * The mutating admission webhook endpoint (HTTPS, served by the controller):
 * POST /mutate-pods with an AdmissionReview (admission.k8s.io/v1). It never
 * denies: a pod it does not recognise is allowed unchanged, and an error is
 * logged and the pod allowed (the Migration then times out and rolls back),
 * so that the webhook can never block a cluster's pods.
 */
import { createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
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
  onError?: (message: string) => void;
}

export interface RunningWebhook {
  port: number;
  close(): Promise<void>;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let body = '';
  for await (const chunk of req) body += String(chunk);
  return JSON.parse(body) as unknown;
}

function send(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function handle(o: WebhookServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== MUTATE_PODS_PATH) {
    return send(res, 404, { message: `no route ${req.method ?? ''} ${req.url ?? ''}` });
  }
  let review: { apiVersion?: string; request?: AdmissionRequest };
  try {
    review = (await readJson(req)) as typeof review;
  } catch (err) {
    return send(res, 400, { message: `body is not JSON: ${(err as Error).message}` });
  }
  const request = review.request;
  if (!request?.uid) return send(res, 400, { message: 'request.uid is missing: not an AdmissionReview' });
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
    apiVersion: review.apiVersion ?? 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response,
  });
}

export async function startWebhookServer(o: WebhookServerOptions): Promise<RunningWebhook> {
  const server = createServer({ cert: o.serving.cert, key: o.serving.key }, (req, res) => {
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
