/**
 * The constants of the image format (see docs/image-format.md). An image is
 * a 12-byte preamble (8-byte magic, u32 LE format version), then records,
 * each an 8-byte header (u32 LE type id, u32 LE payload length) and its
 * payload, ending with a trailer record that holds the SHA-256 of every
 * byte before it.
 *
 * This module imports nothing (eslint.config.js holds it to that): the transfer
 * server, which imports only node: modules and this, reads an image's preamble and
 * header with these same numbers, so that it and the reader cannot drift apart.
 */

/** "FDCKPT\r\n": the CR LF catches text-mode mangling, as PNG's magic does. */
export const MAGIC = Buffer.from('FDCKPT\r\n', 'latin1');

/**
 * The format version this code writes. Version 2 added the header's binding
 * (the Checkpoint an image belongs to); version 3 added the process record's
 * exe and the owner record (type 7); version 4 the file handle of each inotify
 * watch. Versions 1 (unbound, no exe, no owners), 2 (no exe, no owners) and 3
 * (no watch handles) are still read.
 */
export const FORMAT_VERSION = 4;

/**
 * Every version this code reads. test/fixtures/images holds an image of each, written
 * by its release (test/unit/image-versions.test.ts fails when one is missing).
 */
export const READABLE_VERSIONS: readonly number[] = [1, 2, 3, 4];

/** The first version whose image header has the binding (the Checkpoint's names). */
export const BINDING_VERSION = 2;

/** The first version with the process record's exe and the owner record. */
export const EXE_AND_OWNER_VERSION = 3;

/** The first version whose inotify watches carry their file's handle (what restore reopens). */
export const WATCH_HANDLE_VERSION = 4;

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
