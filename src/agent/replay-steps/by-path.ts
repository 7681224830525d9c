/**
 * The planner shared by every file reopened by its path (regular files and
 * devices, directories, fifos, and any fd the policy sends to /dev/null):
 * the target itself opens the path, so it resolves in the target's mount
 * namespace, with the saved flags; then the saved offset and the fd numbers.
 */
import { O } from '../model.js';
import { AT_FDCWD, SEEK_SET, type PlanBuilder, type StepOwner } from './builder.js';
import type { FileUnit } from './types.js';

/** The flags that still mean something on /dev/null. */
const DEVNULL_FLAGS = O.ACCMODE | O.APPEND | O.NONBLOCK | O.LARGEFILE;

/** Names a unit's first fd in step errors. */
export function ownerOf(unit: FileUnit): StepOwner {
  return { fd: unit.targets[0]!.fd, path: unit.path };
}

/** What a type's file needs beyond the open (its module says; a /dev/null stand-in needs neither). */
export interface ByPathOptions {
  /** Put the saved offset back. */
  seek?: boolean;
  /** Hold the path open read-write during the real open (a fifo's open waits for the other end). */
  holdOtherEnd?: boolean;
}

/** Plans open-by-path, seek, and placement of `unit`. */
export function planByPath(unit: FileUnit, b: PlanBuilder, options: ByPathOptions = {}): 'done' {
  const owner = ownerOf(unit);
  const path = b.addPath(unit.path);
  const fifo = options.holdOtherEnd === true && !unit.devnull;
  let helper = -1;
  if (fifo) {
    helper = b.sim.alloc();
    b.add('openat', [AT_FDCWD, path, O.RDWR | O.NONBLOCK], helper, owner);
  }
  const cloexec = b.nextCloexec(unit.targets);
  const tmp = b.sim.alloc();
  const flags = unit.devnull ? unit.file.flags & DEVNULL_FLAGS : unit.file.flags;
  b.add('openat', [AT_FDCWD, path, flags | (cloexec ? O.CLOEXEC : 0)], tmp, owner);
  if (fifo) {
    b.add('close', [helper], 0, owner);
    b.sim.free(helper);
  }
  const seekable = options.seek === true && !unit.devnull;
  if (seekable && unit.file.pos !== 0 && !(unit.file.flags & O.PATH)) {
    b.add('lseek', [tmp, unit.file.pos, SEEK_SET], unit.file.pos, owner);
  }
  b.place(tmp, unit.targets, cloexec, owner);
  // The path may have changed since validation: the target fstat's what it opened, at its
  // final fd, and the agent compares that with what validation saw.
  if (unit.checked) b.addCheck({ fd: owner.fd, path: unit.path, ...unit.checked }, owner);
  return 'done';
}
