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

/** Plans open-by-path, seek, and placement of `unit`. */
export function planByPath(unit: FileUnit, b: PlanBuilder): 'done' {
  const owner = ownerOf(unit);
  const path = b.addPath(unit.path);
  const fifo = unit.file.type === 'fifo' && !unit.devnull;
  let helper = -1;
  if (fifo) {
    // Opening one end of a fifo blocks (or fails with ENXIO) until the other end is
    // open: hold it open read-write for the duration of the real open.
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
  const seekable = !unit.devnull && (unit.file.type === 'regular' || unit.file.type === 'directory');
  if (seekable && unit.file.pos !== 0 && !(unit.file.flags & O.PATH)) {
    b.add('lseek', [tmp, unit.file.pos, SEEK_SET], unit.file.pos, owner);
  }
  b.place(tmp, unit.targets, cloexec, owner);
  // The path may have changed since validation: the target fstat's what it opened, at its
  // final fd, and the agent compares that with what validation saw.
  if (unit.checked) b.addCheck({ fd: owner.fd, path: unit.path, ...unit.checked }, owner);
  return 'done';
}
