/**
 * One GET to another agent's image server: over TLS with the server's
 * certificate pinned by its SHA-256, or plain HTTP when the caller allows it
 * (development). The request, and so the bearer token, is written only once
 * the pinned handshake is done: an impostor never sees the token.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { TransferError } from './errors.js';

/** Where a source agent serves, as its Node advertises it. */
export interface PeerEndpoint {
  /** Base URL: https:// (or http:// where allowed). */
  url: string;
  /** SHA-256 (hex) of the server's certificate; required for https. */
  certSha256?: string;
}

export interface GetOptions {
  headers: OutgoingHttpHeaders;
  /** Socket idle limit, ms. */
  timeoutMs: number;
  /** Limit for the TCP connection and TLS handshake, ms (default: min(timeoutMs, 10 s)). */
  connectTimeoutMs?: number;
  /** Accept http:// endpoints. */
  allowInsecure?: boolean;
}

/** Lowercase hex without separators, as certSha256() writes it (accepts AB:CD:… too). */
export const normalizePin = (pin: string): string => pin.replace(/:/g, '').trim().toLowerCase();

/** A TLS connection whose peer certificate has the pinned SHA-256; rejects with UntrustedPeer otherwise. */
function connectPinned(url: URL, pin: string, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // No chain check (a self-signed certificate has none to check): the pin replaces it.
    const socket = tlsConnect({
      host,
      port: Number(url.port || 443),
      ...(isIP(host) ? {} : { servername: host }),
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no handshake in ${timeoutMs} ms`)));
    socket.once('secureConnect', () => {
      const cert = socket.getPeerX509Certificate();
      const got = cert ? createHash('sha256').update(cert.raw).digest('hex') : 'none';
      if (got !== normalizePin(pin)) {
        socket.destroy();
        reject(
          new TransferError(
            'UntrustedPeer',
            `${url.host} presented a certificate with sha256 ${got}, its Node pins ${normalizePin(pin)}`,
          ),
        );
        return;
      }
      socket.setTimeout(0);
      resolve(socket);
    });
    socket.once('error', (err: Error) =>
      reject(new TransferError('Unreachable', `TLS to ${url.host}: ${err.message}`, true)),
    );
  });
}

/** GET `path` from the endpoint; resolves with the response (any status). Throws TransferError. */
export async function getFrom(peer: PeerEndpoint, path: string, o: GetOptions): Promise<IncomingMessage> {
  let url: URL;
  try {
    url = new URL(peer.url);
  } catch {
    throw new TransferError('Unreachable', `transfer endpoint ${JSON.stringify(peer.url)} is not a URL`);
  }
  const where = `${url.origin}${path}`;
  let socket: Socket | undefined;
  if (url.protocol === 'https:') {
    if (!peer.certSha256) {
      throw new TransferError('UntrustedPeer', `${url.host} advertises no certificate fingerprint to pin`);
    }
    // A blackholed peer should cost seconds per attempt, not the whole idle limit.
    socket = await connectPinned(url, peer.certSha256, o.connectTimeoutMs ?? Math.min(o.timeoutMs, 10_000));
  } else if (url.protocol !== 'http:') {
    throw new TransferError('Unreachable', `transfer endpoint ${peer.url}: unknown scheme ${url.protocol}`);
  } else if (!o.allowInsecure) {
    throw new TransferError(
      'InsecureEndpoint',
      `transfer endpoint ${peer.url} is plain http; refused (agents allow it only with --transfer-insecure)`,
    );
  }
  const pinned = socket;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: Number(url.port || 80),
        path,
        method: 'GET',
        // One request per connection: a retry must not reuse a socket that just failed.
        headers: { ...o.headers, connection: 'close' },
        timeout: o.timeoutMs,
        ...(pinned ? { createConnection: () => pinned } : {}),
      },
      resolve,
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${o.timeoutMs} ms`)));
    req.on('error', (err) => reject(new TransferError('Unreachable', `GET ${where}: ${err.message}`, true)));
    req.end();
  });
}
