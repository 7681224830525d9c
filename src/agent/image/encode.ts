/**
 * The image writer. Records are produced one at a time into 64 KiB chunks
 * and hashed as they go, so a large checkpoint is never held as one string;
 * a memfd's contents are not copied into the chunks but written as they are;
 * writeImage streams the chunks to a temporary file and renames it into
 * place, so a reader never sees a half-written image.
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isFileType, type Checkpoint, type FileRecord, type StoredBytes } from '../model.js';
import { ByteWriter } from './bytes.js';
import { ImageFormatError, RecordViolation } from './errors.js';
import { codecOf } from './filedata/index.js';
import {
  FORMAT_VERSION,
  IGNORED_CODES,
  OWNER_KINDS,
  MAGIC,
  RECORD,
  RECORD_HEADER_BYTES,
  type RecordKind,
} from './format.js';
import { ImageRules } from './rules.js';
import { isStored, storedChunks } from './stored.js';

const CHUNK_BYTES = 64 * 1024;

/** Frames records into a ByteWriter, numbering them and locating errors as a reader would. */
class RecordEmitter {
  readonly w = new ByteWriter();
  /** Bytes already handed out in earlier chunks. */
  private flushed = 0;
  private records = 0;
  readonly rules = new ImageRules();

  constructor(private readonly source: string) {}

  /** Appends one record whose payload `fill` writes; any broken rule becomes an ImageFormatError. */
  record(kind: RecordKind, fill: (w: ByteWriter) => void): void {
    this.records++;
    const start = this.w.length;
    // Where the record starts in the output: external bytes before it count, though not buffered.
    const startSize = this.w.size;
    try {
      if (kind !== 'trailer') this.rules.begin(kind);
      this.w.u32('type', RECORD[kind]);
      this.w.u32('length', 0);
      fill(this.w);
      this.w.patchU32(start + 4, this.w.size - startSize - RECORD_HEADER_BYTES);
    } catch (err) {
      if (!(err instanceof RecordViolation)) throw err;
      const where = { source: this.source, offset: this.flushed + startSize, record: this.records, kind };
      throw new ImageFormatError(where, err.message);
    }
  }

  /** Where the next record will start, for rules that remember a location. */
  next(kind: RecordKind): { source: string; offset: number; record: number; kind: RecordKind } {
    return { source: this.source, offset: this.flushed + this.w.size, record: this.records + 1, kind };
  }

  /**
   * Takes what was written so far when `force` or when enough has piled up: buffered
   * bytes as copies, large contents as they are (in memory, or left in an image file).
   */
  take(force: boolean): (Buffer | StoredBytes)[] {
    if (this.w.size === 0 || (!force && this.w.size < CHUNK_BYTES)) return [];
    this.flushed += this.w.size;
    return this.w.drain();
  }
}

function writeFile(e: RecordEmitter, f: FileRecord): void {
  const where = e.next('file');
  e.record('file', (w) => {
    if (!isFileType(f.type)) throw new RecordViolation(`unknown file type ${String(f.type)}`);
    if (f.data?.type !== f.type)
      throw new RecordViolation(`data type ${String(f.data?.type)} does not match file type ${f.type}`);
    e.rules.file(f, () => where);
    const codec = codecOf(f.type);
    w.i32('objref', f.objref);
    w.u16('type', codec.id);
    w.u32('flags', f.flags);
    w.u64n('pos', f.pos);
    w.i32('mntId', f.mntId);
    w.u64n('dev', f.dev);
    w.u64n('ino', f.ino);
    w.u32('mode', f.mode);
    w.u8('ignored', f.ignored === undefined ? IGNORED_CODES.none : IGNORED_CODES[f.ignored.reason]);
    codec.encode(w, f.data);
  });
  e.record('name', (w) => {
    e.rules.name(f.path);
    w.str('path', f.path);
  });
  const owner = f.owner;
  if (owner === undefined) return;
  e.record('owner', (w) => {
    const kind = OWNER_KINDS.indexOf(owner.kind) + 1;
    e.rules.owner({ kind, id: owner.id, signal: owner.signal });
    w.u8('kind', kind);
    w.i32('id', owner.id);
    w.i32('signal', owner.signal);
  });
}

/**
 * The image of `cp` as a sequence of byte chunks (preamble and records, then
 * the trailer). Throws ImageFormatError, before yielding the offending
 * record, when `cp` breaks a rule the reader enforces.
 */
export function* imageChunks(cp: Checkpoint, source = 'image'): Generator<Buffer, void, undefined> {
  const e = new RecordEmitter(source);
  const hash = createHash('sha256');
  const emit = function* (force: boolean): Generator<Buffer, void, undefined> {
    for (const part of e.take(force)) {
      // Contents left in another image are streamed from it (and checked against its hash).
      for (const chunk of isStored(part) ? storedChunks(part) : [part]) {
        hash.update(chunk);
        yield chunk;
      }
    }
  };
  e.w.raw(MAGIC);
  e.w.u32('version', FORMAT_VERSION);
  const h = cp.header;
  e.record('header', (w) => {
    w.str('node', h.node);
    w.str('source', h.source);
    w.i64n('time', h.time);
    w.str('kernel', h.kernel);
    w.str('tool', h.tool);
    w.bool('bound', h.binding !== undefined);
    if (h.binding) {
      w.str('namespace', h.binding.namespace);
      w.str('name', h.binding.name);
      w.str('uid', h.binding.uid);
      w.str('podUid', h.binding.podUid);
    }
  });
  for (const f of cp.files) {
    writeFile(e, f);
    yield* emit(false);
  }
  for (const t of cp.tables) {
    e.record('table', (w) => {
      e.rules.fileTable(t.objref, t.fds.length);
      w.i32('objref', t.objref);
      w.u32('nfds', t.fds.length);
    });
    for (const fd of t.fds) {
      e.record('fd', (w) => {
        e.rules.fd(fd);
        w.i32('fd', fd.fd);
        w.i32('file', fd.file);
        w.bool('cloexec', fd.cloexec);
      });
      yield* emit(false);
    }
  }
  for (const p of cp.processes) {
    e.record('process', (w) => {
      e.rules.process(p);
      w.i32('pid', p.pid);
      w.i32('tgid', p.tgid);
      w.i32('table', p.table);
      w.str('comm', p.comm);
      w.str('cwd', p.cwd);
      w.str('exe', p.exe ?? '');
      w.u32('argc', p.argv.length);
      p.argv.forEach((arg, i) => w.str(`argv[${i}]`, arg));
    });
    yield* emit(false);
  }
  const trailerAt = e.next('trailer');
  try {
    e.rules.finish();
  } catch (err) {
    if (err instanceof RecordViolation) throw new ImageFormatError(trailerAt, err.message);
    throw err;
  }
  yield* emit(true);
  const digest = hash.digest();
  e.record('trailer', (w) => w.raw(digest));
  yield* e.take(true) as Buffer[];
}

/** The whole image of `cp` in one Buffer. Throws ImageFormatError when `cp` cannot be stored. */
export function encodeCheckpoint(cp: Checkpoint): Buffer {
  return Buffer.concat([...imageChunks(cp)]);
}

/** What writeImage wrote: the file's size and SHA-256 (hex). */
export interface WrittenImage {
  size: number;
  sha256: string;
}

/**
 * Writes the image of `cp` to `path`: streamed to a temporary file in the
 * same directory, flushed to disk, then renamed over `path`. On any error
 * the temporary file is removed and `path` is left as it was.
 */
export async function writeImage(path: string, cp: Checkpoint): Promise<WrittenImage> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'wx', 0o600);
  // The file's size and digest as it is written: the caller records them (a Checkpoint's
  // status.image) without reading the file back.
  const digest = createHash('sha256');
  let size = 0;
  try {
    try {
      for (const chunk of imageChunks(cp, path)) {
        await writeAll(fh, chunk);
        digest.update(chunk);
        size += chunk.length;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dirname(path));
  return { size, sha256: digest.digest('hex') };
}

async function writeAll(fh: FileHandle, chunk: Buffer): Promise<void> {
  for (let done = 0; done < chunk.length;) {
    const { bytesWritten } = await fh.write(chunk, done, chunk.length - done);
    done += bytesWritten;
  }
}

/** Makes the rename itself durable; a filesystem that cannot fsync a directory is not an error. */
async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r').catch(() => undefined);
  if (d === undefined) return;
  try {
    await d.sync().catch(() => undefined);
  } finally {
    await d.close();
  }
}
