/**
 * The semantic rules of an image, checked record by record in stream order.
 * The reader and the writer both feed every record through one ImageRules,
 * so the writer refuses exactly what the reader would reject: an image we
 * wrote is always one we can read.
 *
 * Structure: one image header first, then files, tables, processes, in
 * that order (see SECTION); each file record is followed by its
 * name record; each file table record by exactly `nfds` fd records; an fd
 * names a file, and a process a table, defined by an earlier record. Epoll
 * targets may name any file of the image, so they are checked at the end.
 */
import {
  CREATION_ONLY_FLAGS,
  NFDS_MAX,
  O,
  PATH_MAX,
  type FdRecord,
  type FileRecord,
  type ProcessRecord,
} from '../model.js';
import { ImageFormatError, RecordViolation, type ImageLocation } from './errors.js';
import type { RecordKind } from './format.js';
import { codecOf } from './filedata/index.js';
import { flagWords } from './flags.js';
import { PATH_TYPES, unnormalized } from './paths.js';

interface OpenTable {
  objref: number;
  nfds: number;
  fds: Set<number>;
  /** fd records seen so far, checked (in fds) or only framed (skipFd). */
  count: number;
}

/** A file named by another file's state (an epoll's target), checked at the end. */
interface FileRef {
  where: ImageLocation;
  /** "epoll objref 5: target 0" */
  by: string;
  file: number;
}

function violation(message: string): RecordViolation {
  return new RecordViolation(message);
}

function positiveObjref(what: string, objref: number): void {
  if (!(objref > 0)) throw violation(`${what} ${objref} is not positive`);
}

/**
 * Records come in sections, in this order. A fixed order makes the encoding
 * canonical (one Checkpoint, one byte sequence) and lets every fd and
 * process reference be checked when it is read.
 */
const SECTION: Record<RecordKind, number> = {
  header: 0,
  file: 1,
  name: 1,
  owner: 1,
  table: 2,
  fd: 2,
  process: 3,
  trailer: 4,
};
const SECTION_NAMES = ['header', 'files', 'file tables', 'processes', 'trailer'];

/**
 * The rule checker for one image. Call `begin(kind)` for every record, then
 * the method for its kind with the decoded (or to-be-encoded) values, and
 * `finish()` at the trailer. Violations are thrown as RecordViolation for
 * the caller to locate; only `finish` locates its own (epoll) errors.
 */
export class ImageRules {
  private records = 0;
  private section = 0;
  /** Every objref defined so far, with what it names. */
  private readonly objects = new Map<number, 'file' | 'table'>();
  private readonly pids = new Set<number>();
  /** The file whose name record must come next. */
  private unnamed: number | undefined;
  /** The type of the file record waiting for its name. */
  private unnamedType: string | undefined;
  /** The table whose fd records are still expected. */
  private table: OpenTable | undefined;
  private readonly fileRefs: FileRef[] = [];
  private lastKind: RecordKind | undefined;
  /** The table the latest fd records belonged to, to explain a surplus fd record. */
  private lastTable: OpenTable | undefined;

  /** Sequencing rules: called first for every record, with its kind. */
  begin(kind: RecordKind): void {
    this.records++;
    if (SECTION[kind] < this.section) {
      throw violation(
        `a ${kind} record after the ${SECTION_NAMES[this.section]}: records go ${SECTION_NAMES.join(', ')}`,
      );
    }
    this.section = SECTION[kind];
    if (this.records === 1 && kind !== 'header')
      throw violation(`the first record must be the image header, not ${kind}`);
    if (this.records > 1 && kind === 'header') throw violation('a second image header');
    if (this.unnamed !== undefined && kind !== 'name') {
      throw violation(`file objref ${this.unnamed} is not followed by its name record`);
    }
    if (this.table !== undefined && kind !== 'fd') {
      const t = this.table;
      throw violation(
        `file table objref ${t.objref} declares nfds ${t.nfds} but only ${t.count} fd records follow`,
      );
    }
    if (kind === 'name' && this.unnamed === undefined)
      throw violation('a name record that does not follow a file record');
    // At most one owner per file, right after its name: one encoding per checkpoint.
    if (kind === 'owner' && this.lastKind !== 'name')
      throw violation("an owner record that does not follow a file's name record");
    if (kind === 'fd' && this.table === undefined) {
      const t = this.lastKind === 'fd' || this.lastKind === 'table' ? this.lastTable : undefined;
      throw violation(
        t === undefined
          ? 'an fd record outside a file table'
          : `file table objref ${t.objref} declares nfds ${t.nfds} but more fd records follow`,
      );
    }
    this.lastKind = kind;
  }

  /**
   * The common fields of a file record (the path comes in the name record). `where`:
   * the record's location, asked for only when the file names others (an epoll's targets).
   */
  file(f: Omit<FileRecord, 'path'>, where: () => ImageLocation): void {
    positiveObjref('objref', f.objref);
    this.define(f.objref, 'file');
    if ((f.flags & CREATION_ONLY_FLAGS) !== 0) {
      throw violation(
        `flags 0o${f.flags.toString(8)} contain creation-only ${flagWords(f.flags & CREATION_ONLY_FLAGS)}`,
      );
    }
    if ((f.flags & O.CLOEXEC) !== 0) {
      throw violation(`flags 0o${f.flags.toString(8)} contain O_CLOEXEC, which belongs to each fd record`);
    }
    if (f.ignored !== undefined && f.ignored.reason !== 'type' && f.ignored.reason !== 'fd') {
      throw violation(`ignored reason ${String(f.ignored.reason)} is not type/fd`);
    }
    const refs = codecOf(f.type).fileRefs;
    for (const ref of refs?.of(f.data) ?? []) {
      positiveObjref(`${refs!.noun} ${ref.name} file objref`, ref.objref);
      this.fileRefs.push({
        where: where(),
        by: `${refs!.noun} objref ${f.objref}: ${ref.name}`,
        file: ref.objref,
      });
    }
    this.unnamed = f.objref;
    this.unnamedType = f.type;
  }

  /** An owner record's fields. */
  owner(o: { kind: number; id: number; signal: number }): void {
    if (o.kind < 1 || o.kind > 3) throw violation(`owner kind ${o.kind} is not 1 (pid), 2 (tid) or 3 (pgrp)`);
    if (!(o.id > 0)) throw violation(`owner id ${o.id} is not positive`);
    if (o.signal < 0 || o.signal > 64) throw violation(`owner signal ${o.signal} is not 0..64`);
  }

  name(path: string): void {
    const bytes = Buffer.byteLength(path, 'utf8');
    if (bytes === 0) throw violation(`file objref ${this.unnamed} has an empty path`);
    if (bytes >= PATH_MAX)
      throw violation(`path is ${bytes} bytes, over PATH_MAX (${PATH_MAX} with its NUL)`);
    if (path.includes('\0')) throw violation('path contains a NUL byte');
    // Replay opens these by name: a path capture could not have written is refused here.
    if (this.unnamedType !== undefined && PATH_TYPES.includes(this.unnamedType) && path.startsWith('/')) {
      const why = unnormalized(path);
      if (why)
        throw violation(
          `file objref ${this.unnamed} (${this.unnamedType}) path ${JSON.stringify(path)} has ${why}`,
        );
    }
    this.unnamed = undefined;
  }

  fileTable(objref: number, nfds: number): void {
    positiveObjref('objref', objref);
    if (nfds > NFDS_MAX) throw violation(`nfds ${nfds} is over NFDS_MAX (${NFDS_MAX})`);
    this.define(objref, 'table');
    this.lastTable = { objref, nfds, fds: new Set(), count: 0 };
    if (nfds > 0) this.table = this.lastTable;
  }

  fd(rec: FdRecord): void {
    const t = this.table!;
    if (!(rec.fd >= 0)) throw violation(`fd ${rec.fd} is negative`);
    if (t.fds.has(rec.fd)) throw violation(`duplicate fd ${rec.fd} in file table objref ${t.objref}`);
    positiveObjref(`fd ${rec.fd}: objref`, rec.file);
    const what = this.objects.get(rec.file);
    if (what === undefined)
      throw violation(`fd ${rec.fd}: objref ${rec.file} names no file defined before it`);
    if (what !== 'file') throw violation(`fd ${rec.fd}: objref ${rec.file} is a file table, not a file`);
    t.fds.add(rec.fd);
    this.counted(t);
  }

  /*
   * Framing only, for a reader that decodes part of an image (select.ts): these keep
   * the sequence checked (what follows what, how many fd records a table has, every
   * objref unique) for records whose payload is not parsed. The records it does parse
   * go through a second ImageRules in full.
   */

  /** A file record of which only the objref was read. */
  skipFile(objref: number): void {
    positiveObjref('objref', objref);
    this.define(objref, 'file');
    this.unnamed = objref;
    this.unnamedType = undefined;
  }

  /** A name record, not parsed. */
  skipName(): void {
    this.unnamed = undefined;
  }

  /** An fd record, not parsed. */
  skipFd(): void {
    this.counted(this.table!);
  }

  private counted(t: OpenTable): void {
    t.count++;
    if (t.count === t.nfds) this.table = undefined;
  }

  process(p: ProcessRecord): void {
    if (!(p.pid > 0)) throw violation(`pid ${p.pid} is not positive`);
    if (!(p.tgid > 0)) throw violation(`tgid ${p.tgid} is not positive`);
    if (this.pids.has(p.pid)) throw violation(`duplicate pid ${p.pid}`);
    this.pids.add(p.pid);
    positiveObjref('table objref', p.table);
    const what = this.objects.get(p.table);
    if (what === undefined) throw violation(`table objref ${p.table} names no file table defined before it`);
    if (what !== 'table') throw violation(`table objref ${p.table} is a file, not a file table`);
  }

  /**
   * End of the records (at the trailer): nothing may be left pending. A file
   * named by another's state (an epoll target) that is not a file of the image
   * is reported at the naming file's own record.
   */
  finish(): void {
    this.begin('trailer');
    for (const ref of this.fileRefs) {
      if (this.objects.get(ref.file) !== 'file') {
        throw new ImageFormatError(
          ref.where,
          `${ref.by} names objref ${ref.file}, which is not a file of the image`,
        );
      }
    }
  }

  private define(objref: number, what: 'file' | 'table'): void {
    const had = this.objects.get(objref);
    if (had !== undefined)
      throw violation(`duplicate objref ${objref} (already a ${had === 'file' ? 'file' : 'file table'})`);
    this.objects.set(objref, what);
  }
}
