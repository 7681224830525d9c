/**
 * The constants of the image format (see docs/image-format.md). An image is
 * a 12-byte preamble (8-byte magic, u32 LE format version), then records,
 * each an 8-byte header (u32 LE type id, u32 LE payload length) and its
 * payload, ending with a trailer record that holds the SHA-256 of every
 * byte before it.
 */

/** "FDCKPT\r\n": the CR LF catches text-mode mangling, as PNG's magic does. */
export const MAGIC = Buffer.from('FDCKPT\r\n', 'latin1');

/** The format version this code writes, and the only one it reads. */
export const FORMAT_VERSION = 2;

export const PREAMBLE_BYTES = MAGIC.length + 4;
export const RECORD_HEADER_BYTES = 8;
export const DIGEST_BYTES = 32;

/** Record type ids. Part of the format: never renumbered, never reused. */
export const RECORD = {
  header: 1,
  file: 2,
  name: 3,
  table: 4,
  fd: 5,
  process: 6,
  owner: 7,
  trailer: 255,
} as const;
export type RecordKind = keyof typeof RECORD;

const kindById = new Map<number, RecordKind>(
  Object.entries(RECORD).map(([kind, id]) => [id, kind as RecordKind] as [number, RecordKind]),
);

/** The record kind of a type id, or undefined when the id is unknown. */
export function recordKind(id: number): RecordKind | undefined {
  return kindById.get(id);
}

/** An owner record's kind byte, minus one. */
export const OWNER_KINDS = ['pid', 'tid', 'pgrp'] as const;

/** The ignore-mark byte of a file record: 0 none, 1 ignored by type, 2 ignored by fd. */
export const IGNORED_CODES = { none: 0, type: 1, fd: 2 } as const;
