/**
 * The shapes a file type's `restore` planner (FileTypeOps.restore) works with.
 * Types only: filetypes/ and replay/ both import them, and neither imports
 * the other's runtime through here.
 */
import type { FileRecord } from '../model.js';
import type { FdTarget, PlanBuilder } from './builder.js';

/** An open file to recreate and where it goes. */
export interface FileUnit {
  file: FileRecord;
  targets: FdTarget[];
  /** The path to open (remapped; /dev/null for devnull). */
  path: string;
  /** devnull: open /dev/null with the saved flags instead of the file. */
  devnull: boolean;
  /** The file validation found at `path` (set for regular files, directories, fifos). */
  checked?: { dev: number; ino: number; kind: number };
}

/** Both ends of one pipe (either may be absent from the table). */
export interface PipeUnit {
  kind: 'pipe';
  pipeIno: number;
  read?: FileUnit;
  write?: FileUnit;
}

/** One step of the restore order: a single file, or both ends of one pipe. */
export type RestoreUnit = { kind: 'file'; unit: FileUnit } | PipeUnit;

/** What a planner may ask about the rest of the table. */
export interface PlanContext {
  builder: PlanBuilder;
  /** fds already holding the file with this objref (empty: not placed yet). */
  placedFds(objref: number): number[];
  /** Whether the file with this objref is part of this restore at all. */
  willPlace(objref: number): boolean;
  /** The unit of the other end of a connected unix socket, when it is in this restore. */
  peerOf(unit: FileUnit): FileUnit | undefined;
}

/** 'not-yet': depends on a file that is not placed yet; the driver retries later. */
export type PlanResult = 'done' | 'not-yet';
