/** signalfd: the signal mask (fdinfo `sigmask`, hex). */
import { fdinfoField } from '../procfs/fdinfo.js';
import { O } from '../model.js';
import { ownerOf } from '../replay-steps/by-path.js';
import type { PlanContext } from '../replay-steps/types.js';
import { byAnonLink } from './leak-identity.js';
import type { FileTypeOps, RestoreUnitOf } from './types.js';

/** A signalfd's state in the model. */
export interface SignalfdData {
  type: 'signalfd';
  sigmask: bigint;
}

declare module '../model.js' {
  interface FileDataByType {
    signalfd: SignalfdData;
  }
}

/** The kernel's sigset_t is 8 bytes on x86-64: signalfd4 insists on that size. */
const SIGSET_SIZE = 8;

/**
 * signalfd4(-1, mask) with the saved flags (SFD_NONBLOCK and SFD_CLOEXEC are
 * O_NONBLOCK and O_CLOEXEC), then placement. Signals pending when the image
 * was taken belong to the process, not to the fd: they are not in the table.
 */
function restoreSignalfd(unit: RestoreUnitOf<'signalfd'>, ctx: PlanContext): 'done' {
  const b = ctx.builder;
  const owner = ownerOf(unit);
  const cloexec = b.nextCloexec(unit.targets);
  const mask = Buffer.alloc(SIGSET_SIZE);
  mask.writeBigUInt64LE(unit.file.data.sigmask);
  const tmp = b.sim.alloc();
  const flags = (unit.file.flags & O.NONBLOCK) | (cloexec ? O.CLOEXEC : 0);
  b.add('signalfd4', [-1, b.addData(mask), SIGSET_SIZE, flags], tmp, owner);
  b.place(tmp, unit.targets, cloexec, owner);
  return 'done';
}

export const signalfd = {
  type: 'signalfd',
  detectTier: 'link',
  detect: (link) => link === 'anon_inode:[signalfd]',
  checkpoint: (probe) => ({
    type: 'signalfd',
    sigmask: BigInt(`0x${fdinfoField(probe.fdinfo, 'sigmask') ?? '0'}`),
  }),
  collect: () => [],
  restore: restoreSignalfd,
  leakIdentity: byAnonLink,
} satisfies FileTypeOps<'signalfd'>;
