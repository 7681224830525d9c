/**
 * Errors of the image reader and writer. Every malformed image is an
 * ImageFormatError whose message names the image, the record (its number,
 * counted from 1, and its kind) and the byte offset where the record starts:
 * `image.fdimg: record 12 (fd) at byte 340: objref 0 is not positive`.
 */

/** Where in an image a problem was found. */
export interface ImageLocation {
  /** The image's name: its path, or `image` for an in-memory buffer. */
  source: string;
  /** Byte offset of the record header (or of the bad bytes, before the first record). */
  offset: number;
  /** Record number, counted from 1 (the image header record is 1); absent for the preamble. */
  record?: number;
  /** Record kind (`fd`, `file`, ...), when known. */
  kind?: string;
}

/** A malformed image (reading), or a checkpoint that cannot be stored as one (writing). */
export class ImageFormatError extends Error {
  override readonly name = 'ImageFormatError';

  constructor(
    readonly location: ImageLocation,
    /** What is wrong, without the location prefix. */
    readonly detail: string,
  ) {
    super(`${formatLocation(location)}: ${detail}`);
  }
}

function formatLocation(loc: ImageLocation): string {
  if (loc.record === undefined) return `${loc.source}: at byte ${loc.offset}`;
  const kind = loc.kind === undefined ? '' : ` (${loc.kind})`;
  return `${loc.source}: record ${loc.record}${kind} at byte ${loc.offset}`;
}

/**
 * The image is not the one asked for: its bytes hash to `actual`, the caller
 * expected `expected` (a Checkpoint's status.image.sha256). Thrown before the
 * checkpoint is handed out, so nothing of such an image is ever restored.
 */
export class ImageDigestError extends Error {
  override readonly name = 'ImageDigestError';

  constructor(
    readonly source: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${source}: sha256 ${actual}, expected ${expected}: not the image asked for`);
  }
}

/**
 * A rule broken inside one record. Thrown by field readers and the shared
 * rules, caught by the record loop, which adds the location.
 */
export class RecordViolation extends Error {
  override readonly name = 'RecordViolation';
}
