/**
 * Why an image could not be moved between nodes. The reason is CamelCase so
 * that it can go straight into a condition (Restore Replayed, Migration Ready).
 */
export type TransferReason =
  | 'Unreachable'
  | 'Unauthorized'
  | 'Forbidden'
  | 'ImageNotFound'
  | 'Truncated'
  | 'ChecksumMismatch'
  | 'HttpError'
  | 'WriteFailed'
  /** The peer's certificate is not the one its Node advertises (or it advertises none). */
  | 'UntrustedPeer'
  /** A plain http:// endpoint where TLS is required. */
  | 'InsecureEndpoint';

/** A failed transfer: the partial file is already removed when this is thrown out of fetchImage. */
export class TransferError extends Error {
  constructor(
    readonly reason: TransferReason,
    message: string,
    /** Worth another attempt (a lost connection, a server restarting), not a refusal. */
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'TransferError';
  }
}
