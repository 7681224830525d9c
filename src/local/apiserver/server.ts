/**
 * The HTTP face of the API double: routes discovery and resource requests to the object
 * layer, negotiates Table output for kubectl, decodes the patch types, and answers every
 * failure with a meta/v1 Status. Plain HTTP on loopback; a development harness.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ApiError, methodNotAllowed } from './errors.js';
import { coreVersions, group, groupList, resourceList, versionInfo } from './discovery.js';
import { Objects, type DeleteOptions, type WriteOptions } from './objects.js';
import { openapiGroupVersion, openapiRoot, openapiV2Json, openapiV2Protobuf } from './openapi.js';
import { Registry } from './registry.js';
import { serveScale } from './scale.js';
import { followLog, podLog } from './podlog.js';
import { parseResourcePath, type ResourcePath } from './routes.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { Store } from './storage.js';
import { decodeDeleteOptions } from './protobuf.js';
import { decodeProtobufObject } from './protobuf-apps.js';
import { toTable } from './table.js';
import { makeServingCert } from './tls.js';
import { isObj, metaOf, type Obj, type ResourceInfo } from './types.js';
import { serveWatch } from './watch.js';
import { parseJson, Writes } from './writes.js';

/** Options of {@link startApiServer}. */
export interface ApiServerOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  host?: string;
  /** Called with one line per request (method, URL, Accept, Content-Type, status). */
  log?: (line: string) => void;
  /** Events kept for watches to resume from (default 5000). */
  historyLimit?: number;
  /** Serve HTTPS with a fresh self-signed certificate (needs openssl); default plain HTTP. */
  tls?: boolean;
  /** BOOKMARK period for watches that allow them (default 10 s). */
  bookmarkIntervalMs?: number;
}

/** A running API double. */
export interface ApiServer {
  /** http://127.0.0.1:PORT, or https:// with tls. */
  url: string;
  /** The serving certificate (PEM) when TLS is on: the clients' certificate authority. */
  caCert?: string;
  objects: Objects;
  store: Store;
  registry: Registry;
  /** Test hook: forget watch history so older resourceVersions get 410 Gone. */
  compact(upToRv?: number): void;
  /** Test hook: end every open watch stream, as a server restart or a load balancer would. */
  dropWatches(): void;
  close(): Promise<void>;
}

const BUILTIN_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

/** The request body as text; a protobuf DeleteOptions is turned into its JSON. */
async function readBody(req: IncomingMessage): Promise<string> {
  const buf = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
  if (buf.length && /protobuf/.test(req.headers['content-type'] ?? '')) {
    if (req.method === 'DELETE') return JSON.stringify(decodeDeleteOptions(buf));
    // An access review's answer here does not depend on its body (everything is allowed).
    if (/\/selfsubjectaccessreviews$/.test(req.url?.split('?')[0] ?? '')) return '{}';
    // kubectl create deployment: the one object kubectl sends only as protobuf.
    const obj = decodeProtobufObject(buf);
    if (obj) return JSON.stringify(obj);
    throw new ApiError(
      415,
      'UnsupportedMediaType',
      'the local control plane speaks JSON only: protobuf request bodies are not supported',
    );
  }
  return buf.toString('utf8');
}

function sendJson(res: ServerResponse, code: number, body: unknown, warnings: string[] = []): void {
  const text = JSON.stringify(body);
  const headers: Record<string, string | string[]> = {
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(text)),
  };
  if (warnings.length) headers['Warning'] = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
  res.writeHead(code, headers);
  res.end(text);
}

function wantsTable(req: IncomingMessage): boolean {
  return /as=Table/.test(req.headers.accept ?? '');
}

function writeOptions(q: URLSearchParams, warnings: string[]): WriteOptions {
  return {
    dryRun: q.getAll('dryRun').includes('All'),
    fieldValidation: q.get('fieldValidation') ?? 'Warn',
    warnings,
  };
}

function deleteOptions(q: URLSearchParams, body: unknown): DeleteOptions {
  const b = isObj(body) ? body : {};
  const out: DeleteOptions = {};
  const grace = b['gracePeriodSeconds'] ?? q.get('gracePeriodSeconds');
  if (grace !== undefined && grace !== null) out.gracePeriodSeconds = Number(grace);
  const prop = b['propagationPolicy'] ?? q.get('propagationPolicy');
  if (typeof prop === 'string') out.propagationPolicy = prop;
  if (isObj(b['preconditions'])) out.preconditions = b['preconditions'];
  if (q.getAll('dryRun').includes('All') || (Array.isArray(b['dryRun']) && b['dryRun'].includes('All')))
    out.dryRun = true;
  return out;
}

class Handler {
  readonly store: Store;
  readonly registry = new Registry();
  readonly objects: Objects;
  private readonly writes: Writes;
  private readonly watchStops = new Set<() => void>();

  constructor(
    private readonly opts: ApiServerOptions,
    private readonly address: () => string,
  ) {
    this.store = new Store(opts.historyLimit ?? 5000);
    this.objects = new Objects(this.store, this.registry);
    this.writes = new Writes(this.objects);
    const ns = this.registry.lookup('', 'v1', 'namespaces')!;
    for (const name of BUILTIN_NAMESPACES) this.objects.create(ns, undefined, { metadata: { name } });
  }

  stopWatches(): void {
    for (const s of [...this.watchStops]) s();
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const warnings: string[] = [];
    try {
      const body = req.method === 'GET' ? undefined : await readBody(req);
      if (this.discovery(url.pathname, res, req.headers.accept ?? '')) return;
      const path = parseResourcePath(url.pathname);
      if (!path) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      const info = this.registry.lookup(path.group, path.version, path.resource);
      if (!info) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      await this.resource(req, res, url.searchParams, info, path, body ?? '', warnings);
    } catch (e) {
      const err =
        e instanceof ApiError
          ? e
          : new ApiError(500, 'InternalError', `Internal error occurred: ${(e as Error).message}`);
      if (!res.headersSent) sendJson(res, err.code, err.toStatus(), warnings);
      else res.end();
    } finally {
      this.opts.log?.(
        `${req.method} ${req.url} accept=${req.headers.accept ?? ''} ct=${req.headers['content-type'] ?? ''} -> ${res.statusCode}`,
      );
    }
  }

  private discovery(p: string, res: ServerResponse, accept: string): boolean {
    const path = p.replace(/\/+$/, '') || '/';
    if (path === '/version') return (sendJson(res, 200, versionInfo()), true);
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return true;
    }
    if (path === '/openapi/v2') {
      if (!/protobuf/.test(accept)) return (sendJson(res, 200, openapiV2Json()), true);
      const body = openapiV2Protobuf();
      res.writeHead(200, {
        'Content-Type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf',
        'Content-Length': String(body.length),
      });
      res.end(body);
      return true;
    }
    if (path === '/openapi/v3')
      return (sendJson(res, 200, openapiRoot(this.registry, String(this.store.currentRv()))), true);
    const oa = /^\/openapi\/v3\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(path);
    if (oa) {
      const doc = oa[1]
        ? openapiGroupVersion(this.registry, '', 'v1')
        : openapiGroupVersion(this.registry, oa[2]!, oa[3]!);
      if (!doc) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      return (sendJson(res, 200, doc), true);
    }
    if (path === '/api') return (sendJson(res, 200, coreVersions(this.address())), true);
    if (path === '/apis') return (sendJson(res, 200, groupList(this.registry)), true);
    const m = /^\/(?:api\/(v1)|apis\/([^/]+)(?:\/([^/]+))?)$/.exec(path);
    if (!m) return false;
    let doc: Obj | undefined;
    if (m[1]) doc = resourceList(this.registry, '', m[1]);
    else if (m[3]) doc = resourceList(this.registry, m[2]!, m[3]);
    else doc = group(this.registry, m[2]!);
    if (!doc) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    sendJson(res, 200, doc);
    return true;
  }

  private async resource(
    req: IncomingMessage,
    res: ServerResponse,
    q: URLSearchParams,
    info: ResourceInfo,
    p: ResourcePath,
    rawBody: string,
    warnings: string[],
  ): Promise<void> {
    const ns = info.namespaced ? p.namespace : undefined;
    if (!info.namespaced && p.namespace)
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    const sub = p.subresource;
    if (
      sub &&
      !(
        (sub === 'status' && info.statusSubresource) ||
        (sub === 'scale' && info.scaleSubresource) ||
        ((sub === 'binding' || sub === 'log') && info.storageKey === 'pods')
      )
    ) {
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    }
    if (sub === 'log' && p.name && ns && req.method === 'GET') {
      const log = podLog(this.objects, this.registry, ns, p.name, q);
      if (q.get('follow') === 'true') {
        followLog(this.objects, this.registry, ns, p.name, log, res, (stop) => {
          this.watchStops.add(stop);
          return () => this.watchStops.delete(stop);
        });
        return;
      }
      const text = log.text;
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(Buffer.byteLength(text)) });
      res.end(text);
      return;
    }
    if (sub === 'scale' && p.name) {
      const scale = await serveScale(
        this.objects,
        this.writes,
        req,
        info,
        ns,
        p.name,
        rawBody,
        writeOptions(q, warnings),
      );
      return sendJson(res, 200, scale, warnings);
    }
    const o = this.objects;
    switch (req.method) {
      case 'GET':
        if (p.name) return sendJson(res, 200, this.maybeTable(req, q, info, [o.get(info, ns, p.name)]));
        if (q.get('watch') === 'true' || q.get('watch') === '1')
          return this.watch(q, info, ns, res, wantsTable(req));
        return sendJson(res, 200, this.list(req, q, info, ns));
      case 'POST': {
        if (info.resource === 'selfsubjectaccessreviews')
          return sendJson(res, 201, accessReview(parseJson(rawBody)));
        if (p.name && sub === 'binding')
          return sendJson(res, 201, this.writes.bind(info, ns, p.name, parseJson(rawBody)));
        if (p.name) throw methodNotAllowed('POST on a named resource is not supported');
        const created = await this.writes.createAdmitted(
          info,
          ns,
          parseJson(rawBody),
          writeOptions(q, warnings),
        );
        return sendJson(res, 201, created, warnings);
      }
      case 'PUT':
        if (!p.name) throw methodNotAllowed('PUT needs a name');
        return sendJson(
          res,
          200,
          await this.writes.updateAdmitted(
            info,
            ns,
            p.name,
            parseJson(rawBody),
            sub,
            writeOptions(q, warnings),
          ),
          warnings,
        );
      case 'PATCH': {
        if (!p.name) throw methodNotAllowed('PATCH needs a name');
        const r = await this.writes.patch(req, q, info, ns, p.name, sub, rawBody, writeOptions(q, warnings));
        return sendJson(res, r.created ? 201 : 200, r.obj, warnings);
      }
      case 'DELETE': {
        const dopts = deleteOptions(q, parseJson(rawBody));
        if (p.name) return sendJson(res, 200, await this.writes.deleteAdmitted(info, ns, p.name, dopts));
        const items: Obj[] = [];
        for (const x of this.selected(q, info, ns)) {
          items.push(await this.writes.deleteAdmitted(info, metaOf(x).namespace, metaOf(x).name!, dopts));
        }
        return sendJson(res, 200, {
          kind: info.listKind,
          apiVersion: o.present(info, {})['apiVersion'],
          metadata: { resourceVersion: String(this.store.currentRv()) },
          items,
        });
      }
      default:
        throw methodNotAllowed(`method ${req.method} is not supported`);
    }
  }

  private selected(q: URLSearchParams, info: ResourceInfo, ns: string | undefined): Obj[] {
    const labels = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'), info.fieldLabels);
    return this.objects.list(info, ns).filter((x) => labels.matches(metaOf(x).labels) && fields.matches(x));
  }

  private list(req: IncomingMessage, q: URLSearchParams, info: ResourceInfo, ns: string | undefined): Obj {
    const rv = String(this.store.currentRv());
    const items = this.selected(q, info, ns);
    if (wantsTable(req)) return toTable(info, items, rv, q.get('includeObject'));
    return {
      kind: info.listKind,
      apiVersion: this.objects.present(info, {})['apiVersion'],
      metadata: { resourceVersion: rv },
      items,
    };
  }

  private maybeTable(req: IncomingMessage, q: URLSearchParams, info: ResourceInfo, objs: Obj[]): Obj {
    return wantsTable(req)
      ? toTable(info, objs, metaOf(objs[0]!).resourceVersion ?? '', q.get('includeObject'))
      : objs[0]!;
  }

  private watch(
    q: URLSearchParams,
    info: ResourceInfo,
    ns: string | undefined,
    res: ServerResponse,
    table: boolean,
  ): void {
    const timeout = q.get('timeoutSeconds');
    serveWatch(
      this.objects,
      {
        info,
        namespace: ns,
        labels: parseLabelSelector(q.get('labelSelector')),
        fields: parseFieldSelector(q.get('fieldSelector'), info.fieldLabels),
        resourceVersion: q.get('resourceVersion') ?? undefined,
        bookmarks: q.get('allowWatchBookmarks') === 'true',
        timeoutSeconds: timeout ? Number(timeout) : undefined,
        bookmarkIntervalMs: this.opts.bookmarkIntervalMs ?? 10000,
        ...(table
          ? {
              render: (obj: Obj) =>
                toTable(info, [obj], metaOf(obj).resourceVersion ?? '', q.get('includeObject')),
            }
          : {}),
      },
      res,
      (stop) => {
        this.watchStops.add(stop);
        return () => this.watchStops.delete(stop);
      },
    );
  }
}

/** A SelfSubjectAccessReview answered as allowed: the harness has no authorization. */
function accessReview(body: unknown): Obj {
  const spec = isObj(body) && isObj(body['spec']) ? body['spec'] : {};
  return {
    kind: 'SelfSubjectAccessReview',
    apiVersion: 'authorization.k8s.io/v1',
    metadata: {},
    spec,
    status: { allowed: true, reason: 'the fdckpt local control plane authorizes every request' },
  };
}

/** Starts the API double on loopback. */
export async function startApiServer(opts: ApiServerOptions = {}): Promise<ApiServer> {
  const host = opts.host ?? '127.0.0.1';
  const holder: { server?: Server } = {};
  const address = (): string => {
    const a = holder.server?.address() as AddressInfo | null;
    return a ? `${host}:${a.port}` : host;
  };
  const handler = new Handler(opts, address);
  const cert = opts.tls ? makeServingCert() : undefined;
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => void handler.handle(req, res);
  const server: Server = cert
    ? createTlsServer({ key: cert.key, cert: cert.cert }, onRequest)
    : createServer(onRequest);
  holder.server = server;
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const url = `${cert ? 'https' : 'http'}://${address()}`;
  return {
    url,
    ...(cert ? { caCert: cert.cert } : {}),
    objects: handler.objects,
    store: handler.store,
    registry: handler.registry,
    compact: (upTo) => handler.store.compact(upTo),
    dropWatches: () => handler.stopWatches(),
    close: async () => {
      handler.stopWatches();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
