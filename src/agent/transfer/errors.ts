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
  | 'WriteFailed';

/** A failed transfer: the partial file is already removed when this is thrown. */
export class TransferError extends Error {
  constructor(
    readonly reason: TransferReason,
    message: string,
  ) {
    super(message);
    this.name = 'TransferError';
  }
}
