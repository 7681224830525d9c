/**
 * The image server of an agent: other nodes' agents GET the image of a
 * Checkpoint captured here, presenting their own credential as a bearer token,
 * which `authorize` checks before anything about the image is looked at (the
 * agent: the requester's node-bound ServiceAccount token, by TokenReview, and a
 * Restore of that Checkpoint assigned to the requester's node). Served over
 * HTTPS with the agent's own certificate (peers pin its fingerprint; plain
 * HTTP only when no certificate is given, for development). Streamed from
 * disk with backpressure; `Range: bytes=N-` lets a client resume a cut
 * transfer. The digest goes in a header so that the client can fail fast on
 * a mismatch (and check it resumes the same image), but the client always
 * hashes what it received. Only an image whose header is bound to the
 * requested Checkpoint is served (ServableImage.binding).
 *
 * Imports only node: modules and image/format.ts (which imports nothing), so that
 * tests can run it in a separate process (and kill that process mid-transfer).
 */
import { constants, createReadStream } from 'node:fs';
import { open, readlink, realpath } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Socket } from 'node:net';
import { sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  BINDING_VERSION,
  MAGIC,
  PREAMBLE_BYTES,
  READABLE_VERSIONS,
  RECORD,
  RECORD_HEADER_BYTES,
} from '../image/format.js';

/** The path of one image: /v1/images/<namespace>/<checkpoint>. */
export const IMAGE_ROUTE = /^\/v1\/images\/([a-z0-9][-a-z0-9.]*)\/([a-z0-9][-a-z0-9.]*)$/;

/** The Checkpoint an image must belong to: from the Checkpoint object looked up, never from its status. */
export interface ExpectedBinding {
  namespace: string;
  name: string;
  uid: string;
}

/** An image this node can serve. */
export interface ServableImage {
  path: string;
  size: number;
  sha256: string;
  /**
   * When given, the image's header must name this Checkpoint (docs/image-format.md,
   * image header; docs/adr/0012-image-binding.md), or it is refused with 409: another
   * Checkpoint's image planted at this one's path is not served. The agent's lookup
   * always gives it; only tests of the transport itself serve files without.
   */
  binding?: ExpectedBinding;
}

/**
 * Whether the bearer of a credential may have a Checkpoint's image: allowed (`peer`
 * names who, for the log), or refused with the status to answer and why.
 */
export type TransferVerdict =
  { allowed: true; peer: string } | { allowed: false; status: 401 | 403 | 503; reason: string };

/** Decides who may fetch which Checkpoint's image; called before the image is looked up. */
export type TransferAuthorizer = (
  credential: string,
  namespace: string,
  checkpoint: string,
) => Promise<TransferVerdict>;

/**
 * A credential longer than this is not one: a ServiceAccount token is 1–2 KB. Refused
 * before `authorize`, which may ask the API server (Node refuses headers past 16 KiB
 * with 431 on its own).
 */
export const MAX_CREDENTIAL_BYTES = 8 * 1024;

export interface TransferServerOptions {
  port?: number;
  host?: string;
  /**
   * The agent's data directory: only a regular file inside it is ever served,
   * whatever path `lookup` answers (that path comes from a status field).
   */
  root: string;
  /** Who may have which image: asked first, for every request. */
  authorize: TransferAuthorizer;
  /** The image of namespace/checkpoint if it is on this node, else undefined (404). */
  lookup(namespace: string, checkpoint: string): Promise<ServableImage | undefined>;
  /** Told about each request that failed, for the agent's log. */
  onError?: (message: string) => void;
  /** Serve HTTPS with this key and certificate (PEM); without it, plain HTTP. */
  tls?: { key: string; cert: string };
  /** Connection bounds; DEFAULT_LIMITS for what is not given. */
  limits?: Partial<TransferLimits>;
}

/**
 * What one peer may hold of the server. The port is open to the network and
 * a connection costs an fd of the agent's process (which, on the local plane,
 * is the controller's too): 19,950 idle connections once took them all.
 */
export interface TransferLimits {
  /** Connections at once; the next one is closed at accept. */
  maxConnections: number;
  /** From connection (or the previous response) to the request's complete headers. */
  headersTimeoutMs: number;
  /** From connection to the complete request (a GET has no body: as good as the headers). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection between requests. */
  keepAliveTimeoutMs: number;
  /** A socket with no traffic at all, e.g. a client that stopped reading the image. */
  idleTimeoutMs: number;
}

/** Peers are the other nodes' agents, a few transfers each at most. */
export const DEFAULT_LIMITS: TransferLimits = {
  maxConnections: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 60_000,
};

export interface RunningTransferServer {
  port: number;
  /** `https://host:port` (`http://` without tls), what the node annotation advertises. */
  url: string;
  close(): Promise<void>;
}

/** Header carrying the image's SHA-256 (hex). */
export const SHA256_HEADER = 'x-fdckpt-sha256';

function reply(res: ServerResponse, code: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(code, { 'content-type': 'text/plain', ...headers });
  res.end(`${text}\n`);
}

/**
 * The byte range asked for (`bytes=N-` or `bytes=N-M`, inclusive), clipped to
 * the image: 'unsatisfiable' when it starts at or past the end; undefined when
 * there is no Range or one this server does not do (suffix, several ranges,
 * malformed), which RFC 9110 §14.2 lets a server answer with the whole image.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d+)-(\d*)$/.exec(header?.trim() ?? '');
  if (!m) return undefined;
  const start = Number(m[1]);
  const last = m[2] ? Number(m[2]) : Infinity;
  if (!Number.isSafeInteger(start) || (m[2] && !Number.isSafeInteger(last)) || last < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(last, size - 1) };
}

async function handle(
  options: TransferServerOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const match = IMAGE_ROUTE.exec(path);
  if (req.method !== 'GET' || !match) return reply(res, 404, `no route ${req.method ?? ''} ${path}`);
  const [, namespace = '', checkpoint = ''] = match;
  const auth = req.headers.authorization ?? '';
  if (!auth.startsWith('Bearer ') || auth.length === 'Bearer '.length)
    return reply(res, 401, 'a bearer token is required');
  if (auth.length > MAX_CREDENTIAL_BYTES) return reply(res, 401, 'the bearer token is too long');
  const verdict = await options.authorize(auth.slice('Bearer '.length), namespace, checkpoint);
  if (!verdict.allowed) {
    options.onError?.(`transfer ${path}: refused (${verdict.status}): ${verdict.reason}`);
    return reply(res, verdict.status, verdict.reason);
  }
  // Only for an authorized requester: whether a Checkpoint has an image here is nobody else's business.
  const image = await options.lookup(namespace, checkpoint);
  if (!image) return reply(res, 404, `no image of checkpoint ${namespace}/${checkpoint} on this node`);
  const range = parseRange(req.headers.range, image.size);
  if (range === 'unsatisfiable') {
    return reply(res, 416, `the image has ${image.size} bytes`, { 'content-range': `bytes */${image.size}` });
  }
  const file = await openServable(options.root, image);
  if (typeof file === 'string') {
    options.onError?.(`transfer ${path}: ${file}`);
    return reply(res, 404, `no image of checkpoint ${namespace}/${checkpoint} on this node`);
  }
  const mismatch = image.binding ? await bindingMismatch(file, image.binding) : undefined;
  if (mismatch !== undefined) {
    await file.close();
    // The details (whose image it is) go to the agent's log, not to the requester.
    options.onError?.(`transfer ${path}: refusing ${image.path}: ${mismatch}`);
    return reply(
      res,
      409,
      `the image on this node at the path of checkpoint ${namespace}/${checkpoint} is not bound to it (uid ${image.binding!.uid})`,
    );
  }
  const { start, end } = range ?? { start: 0, end: image.size - 1 };
  res.writeHead(range ? 206 : 200, {
    'content-type': 'application/octet-stream',
    'content-length': String(end - start + 1),
    'accept-ranges': 'bytes',
    ...(range ? { 'content-range': `bytes ${start}-${end}/${image.size}` } : {}),
    [SHA256_HEADER]: image.sha256,
  });
  await pipeline(createReadStream('', { fd: file, start, end }), res);
}

/**
 * Open the image for reading if it is a regular file of `image.size` bytes
 * inside `root`, or say why not. The check is made on the opened file (its
 * /proc/self/fd link is the path the kernel resolved), so a path swapped
 * after the check cannot send another file; O_NOFOLLOW refuses a final
 * symlink outright, and a directory symlink on the way is caught by the
 * resolved path leaving `root`.
 */
async function openServable(root: string, image: ServableImage): Promise<FileHandle | string> {
  let fh: FileHandle;
  try {
    fh = await open(image.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    return `open(${image.path}): ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  }
  try {
    const real = await readlink(`/proc/self/fd/${fh.fd}`);
    const top = await realpath(root);
    if (!real.startsWith(top + sep)) return close(fh, `refusing ${image.path}: ${real} is not under ${top}`);
    const st = await fh.stat();
    if (!st.isFile()) return close(fh, `refusing ${image.path}: not a regular file`);
    if (st.size !== image.size)
      return close(fh, `refusing ${image.path}: ${st.size} bytes, the Checkpoint says ${image.size}`);
    return fh;
  } catch (err) {
    return close(fh, `${image.path}: ${(err as Error).message}`);
  }
}

/** An image header is a few names: more than this is not one the agent wrote. */
const HEADER_MAX_BYTES = 64 * 1024;

/**
 * Why the image open at `fh` is not bound to `want` (undefined: it is). Reads the
 * preamble and the header record only, at most HEADER_MAX_BYTES, from the opened
 * file (the one that will be streamed). Parsed here rather than with image/decode.ts,
 * which would bring the whole reader into this process; the versions are the
 * reader's own (format.ts). Every readable version from BINDING_VERSION on lays the
 * header out as below (docs/image-format.md, image header): a version that changes
 * it changes this parser too, and test/transfer/image-versions.test.ts serves the
 * bound fixture of each version. The client still checks the whole image.
 */
async function bindingMismatch(fh: FileHandle, want: ExpectedBinding): Promise<string | undefined> {
  const head = Buffer.alloc(PREAMBLE_BYTES + RECORD_HEADER_BYTES);
  const { bytesRead } = await fh.read(head, 0, head.length, 0);
  if (bytesRead < head.length || !head.subarray(0, MAGIC.length).equals(MAGIC)) return 'not an fdckpt image';
  const version = head.readUInt32LE(MAGIC.length);
  if (!READABLE_VERSIONS.includes(version)) return `unknown image format version ${version}`;
  if (version < BINDING_VERSION) return `a version ${version} image, which has no binding`;
  const length = head.readUInt32LE(PREAMBLE_BYTES + 4);
  if (head.readUInt32LE(PREAMBLE_BYTES) !== RECORD.header) return 'the first record is not an image header';
  if (length > HEADER_MAX_BYTES) return `an image header of ${length} bytes`;
  const payload = Buffer.alloc(length);
  if ((await fh.read(payload, 0, length, head.length)).bytesRead !== length)
    return 'a truncated image header';
  let at = 0;
  const str = (): string => {
    const n = payload.readUInt32LE(at);
    const v = payload.toString('utf8', at + 4, at + 4 + n);
    at += 4 + n;
    if (at > payload.length) throw new RangeError('field past the end');
    return v;
  };
  try {
    str(); // node
    str(); // source
    at += 8; // time
    str(); // kernel
    str(); // tool
    if (payload[at++] !== 1) return 'an image bound to no Checkpoint';
    const got = { namespace: str(), name: str(), uid: str() };
    if (got.namespace === want.namespace && got.name === want.name && got.uid === want.uid) return undefined;
    return `bound to checkpoint ${got.namespace}/${got.name} (uid ${got.uid}), not ${want.namespace}/${want.name} (uid ${want.uid})`;
  } catch {
    return 'a malformed image header';
  }
}

async function close(fh: FileHandle, why: string): Promise<string> {
  await fh.close();
  return why;
}

/** Start serving; `port` 0 picks a free one. */
export async function startTransferServer(options: TransferServerOptions): Promise<RunningTransferServer> {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  // Node's headersTimeout only runs once a request has begun: a connection that
  // sends nothing at all would be held forever. Each gets until headersTimeout to
  // send its first request.
  const firstRequest = new WeakMap<object, NodeJS.Timeout>();
  const awaitRequest = (socket: Socket): void => {
    const timer = setTimeout(() => socket.destroy(), limits.headersTimeoutMs);
    timer.unref();
    firstRequest.set(socket, timer);
    socket.once('close', () => clearTimeout(timer));
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    clearTimeout(firstRequest.get(req.socket));
    handle(options, req, res).catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      options.onError?.(`transfer ${req.url ?? ''}: ${message}`);
      if (!res.headersSent) reply(res, 500, message);
      else res.destroy();
    });
  };
  const http = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node looks for expired headers/request timers this often (30 s by default,
    // which would let a short timeout run that long).
    connectionsCheckingInterval: Math.max(
      100,
      Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4,
    ),
  };
  // TLS 1.3 only: both ends are this program, there is no older peer to serve.
  const server: Server = options.tls
    ? createTlsServer(
        {
          ...http,
          // A handshake never finished holds a connection as an idle one does.
          handshakeTimeout: limits.headersTimeoutMs,
          key: options.tls.key,
          cert: options.tls.cert,
          minVersion: 'TLSv1.3',
        },
        onRequest,
      )
    : createServer(http, onRequest);
  server.maxConnections = limits.maxConnections;
  // Over TLS the request comes on the TLS socket, once the handshake (bounded by handshakeTimeout) is done.
  server.on(options.tls ? 'secureConnection' : 'connection', awaitRequest);
  server.setTimeout(limits.idleTimeoutMs, (socket) => socket.destroy());
  const host = options.host ?? '0.0.0.0';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0);
  return {
    port,
    url: `${options.tls ? 'https' : 'http'}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
