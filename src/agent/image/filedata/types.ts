/**
 * How one file type's own state (`FileData`) is stored in a file record,
 * after the common fields. One module per type implements this; index.ts
 * registers them. A type's numeric `id` is part of the format: it never
 * changes once released, and a retired id is never reused.
 */
import type { FileData, FileType } from '../../model.js';
import type { ByteReader, ByteWriter } from '../bytes.js';

export type DataOf<T extends FileType> = Extract<FileData, { type: T }>;

export interface FileDataCodec<T extends FileType> {
  type: T;
  id: number;
  encode(w: ByteWriter, data: DataOf<T>): void;
  /**
   * Reads exactly the bytes `encode` wrote; the record loop rejects leftovers. `version`:
   * the image's format version, for a type whose layout an older version had otherwise.
   */
  decode(r: ByteReader, version: number): DataOf<T>;
  /**
   * The other files this state names by objref (an epoll's targets), each with what it
   * is called in messages; the reader checks, once all records are read, that each is a
   * file of the image. `noun` names the file that holds them ("epoll").
   */
  fileRefs?: { noun: string; of(data: DataOf<T>): { name: string; objref: number }[] };
  /**
   * The file's name as a restore must reproduce it (image/diff.ts compares these). Absent:
   * the name itself. A type whose name embeds a number the kernel assigns afresh at
   * restore (`pipe:[N]`) masks it.
   */
  comparablePath?(path: string): string;
}
