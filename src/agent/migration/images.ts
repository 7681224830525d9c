/**
 * The agent's Kubernetes side of image transfer. As a source: which image a
 * request may have (the Checkpoint's image on this node; who may ask is
 * transfer-auth.ts's business). As a target: get a Checkpoint's image onto
 * this node — it is here already, or on the shared volume, or fetched from the
 * source node's agent at the URL that node advertises, presenting this agent's
 * transfer token (its ServiceAccount's, for TRANSFER_AUDIENCE).
 */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { Checkpoint } from '../../api/index.js';
import {
  TRANSFER_AUDIENCE,
  TRANSFER_CERT_ANNOTATION,
  TRANSFER_ENDPOINT_ANNOTATION,
} from '../../api/index.js';
import type { ResourceClient } from '../../kube/client.js';
import { isNotFound } from '../../kube/errors.js';
import { imagePathFor } from '../daemon/checkpoint.js';
import type { PeerEndpoint, RetryPolicy } from '../transfer/client.js';
import { fetchImage } from '../transfer/client.js';
import { TransferError } from '../transfer/errors.js';
import type { ServableImage } from '../transfer/server.js';
import type { AgentMetrics } from '../daemon/metrics.js';
import { onSharedVolume, sha256Of, verifySharedImage } from '../transfer/shared.js';

export interface ImageDeps {
  nodeName: string;
  dataDir: string;
  core: CoreV1Api;
  checkpoints: ResourceClient<Checkpoint>;
  /** The image directory every agent mounts at the same path, if the cluster has one. */
  sharedDir?: string;
  /** Retries of a cut fetch (default DEFAULT_RETRY). */
  retry?: Partial<RetryPolicy>;
  /** Fetch from plain http:// endpoints too (development only). */
  allowInsecure?: boolean;
  /** For the agent's log: each retry, each finished fetch. */
  log?: (message: string) => void;
  /**
   * The file holding this agent's token for TRANSFER_AUDIENCE (DEFAULT_TRANSFER_TOKEN_FILE
   * in a pod), read at each fetch: the kubelet replaces it before it expires.
   */
  tokenFile: string;
  /** Counters of the bytes fetched and the retries (the agent's /metrics). */
  metrics?: Pick<AgentMetrics, 'transferBytes' | 'transferRetries'>;
}

/** A local image ready for replay, and how long getting it took. */
export interface LocalImage {
  path: string;
  transferMs: number;
  /** Delete the local copy once replayed (only for a fetched copy; the source's image stays). */
  release?: () => Promise<void>;
  /** For a fetched copy: body bytes received (all attempts) and attempts made. */
  transfer?: { bytes: number; attempts: number };
}

/** This agent's transfer token, as the kubelet last wrote it. */
async function transferToken(deps: ImageDeps): Promise<string> {
  let token: string;
  try {
    token = (await readFile(deps.tokenFile, 'utf8')).trim();
  } catch (err) {
    throw new TransferError(
      'Unauthorized',
      `no transfer token at ${deps.tokenFile} (${(err as NodeJS.ErrnoException).code ?? String(err)}): the agent's pod mounts one for audience ${TRANSFER_AUDIENCE} (deploy/agent.yaml)`,
    );
  }
  if (!token) throw new TransferError('Unauthorized', `the transfer token file ${deps.tokenFile} is empty`);
  return token;
}

/** For the transfer server: the image of namespace/checkpoint if it is on this node. */
export function imageLookup(
  deps: Pick<ImageDeps, 'nodeName' | 'dataDir' | 'checkpoints'>,
): (namespace: string, checkpoint: string) => Promise<ServableImage | undefined> {
  return async (namespace, checkpoint) => {
    let ckpt: Checkpoint;
    try {
      ckpt = await deps.checkpoints.get(namespace, checkpoint);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const image = ckpt.status?.image;
    if (!image || image.node !== deps.nodeName) return undefined;
    // status.image.path is written by whoever may write checkpoints/status: serve
    // only the file this agent writes for this very Checkpoint (its uid is in the
    // name, so a recreated Checkpoint of the same name does not get the old image).
    const path = resolve(imagePathFor(deps.dataDir, ckpt));
    if (resolve(image.path) !== path || !existsSync(path)) return undefined;
    // The server checks the image's header against the Checkpoint itself, not its status.
    const binding = { namespace, name: checkpoint, uid: ckpt.metadata.uid ?? '' };
    return { path, size: image.size, sha256: image.sha256, binding };
  };
}

/** Make the Checkpoint's image available on this node; throws TransferError. */
export async function localImage(deps: ImageDeps, ckpt: Checkpoint): Promise<LocalImage> {
  const t0 = performance.now();
  const ns = ckpt.metadata.namespace ?? '';
  const name = ckpt.metadata.name ?? '';
  const image = ckpt.status?.image;
  if (!image) throw new TransferError('ImageNotFound', `checkpoint ${ns}/${name} has no image`);
  if (image.node === deps.nodeName) return { path: image.path, transferMs: 0 };
  if (deps.sharedDir && onSharedVolume(deps.sharedDir, image.path)) {
    const path = await verifySharedImage(image.path, image.size, image.sha256);
    return { path, transferMs: performance.now() - t0 };
  }
  const dest = imagePathFor(deps.dataDir, ckpt);
  // A retried replay finds the copy an earlier attempt fetched and verified.
  const release = (): Promise<void> => rm(dest, { force: true });
  if (existsSync(dest) && (await sha256Of(dest)) === image.sha256)
    return { path: dest, transferMs: 0, release };
  const peer = (): Promise<PeerEndpoint> => sourceEndpoint(deps.core, image.node);
  const first = await peer();
  const token = await transferToken(deps);
  // Counted as they arrive, so that a fetch that fails in the end is counted too.
  let counted = 0;
  const got = await fetchImage({
    ...first,
    namespace: ns,
    checkpoint: name,
    token,
    dest,
    sha256: image.sha256,
    size: image.size,
    retry: deps.retry,
    allowInsecure: deps.allowInsecure,
    refresh: peer,
    onProgress: (have) => {
      // `have` falls back only when a server ignores the range and the part file restarts.
      if (have < counted) counted = 0;
      deps.metrics?.transferBytes.inc(have - counted);
      counted = have;
    },
    onRetry: (err, n, delay) => {
      deps.metrics?.transferRetries.inc();
      deps.log?.(
        `image ${ns}/${name} from ${image.node}: attempt ${n} failed (${err.reason}: ${err.message}); retrying in ${delay} ms`,
      );
    },
  });
  deps.log?.(
    `image ${ns}/${name} from ${image.node}: ${got.bytes} bytes in ${Math.round(got.ms)} ms, ${got.received} received in ${got.attempts} attempt(s)`,
  );
  return {
    path: got.path,
    transferMs: performance.now() - t0,
    release,
    transfer: { bytes: got.received, attempts: got.attempts },
  };
}

/** Where the agent of `nodeName` serves images and which certificate it has, from its Node. */
export async function sourceEndpoint(core: CoreV1Api, nodeName: string): Promise<PeerEndpoint> {
  let annotations: Record<string, string>;
  try {
    annotations = (await core.readNode({ name: nodeName })).metadata?.annotations ?? {};
  } catch (err) {
    if (!isNotFound(err)) throw err;
    throw new TransferError('Unreachable', `node ${nodeName}, which holds the image, no longer exists`);
  }
  const url = annotations[TRANSFER_ENDPOINT_ANNOTATION];
  if (!url)
    throw new TransferError(
      'Unreachable',
      `node ${nodeName} advertises no transfer endpoint (${TRANSFER_ENDPOINT_ANNOTATION})`,
    );
  const certSha256 = annotations[TRANSFER_CERT_ANNOTATION];
  return certSha256 ? { url, certSha256 } : { url };
}

/**
 * Advertise this agent's transfer server on its Node (merge patch): its URL
 * and, when given, its certificate's SHA-256. Without `certSha256` the pin
 * annotation is left as it is; with null it is removed (a plain-http agent).
 */
export async function advertiseEndpoint(
  core: CoreV1Api,
  nodeName: string,
  url: string,
  certSha256?: string | null,
): Promise<void> {
  const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
  const annotations: Record<string, string | null> = { [TRANSFER_ENDPOINT_ANNOTATION]: url };
  if (certSha256 !== undefined) annotations[TRANSFER_CERT_ANNOTATION] = certSha256;
  await core.patchNode(
    { name: nodeName, body: { metadata: { annotations } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}
