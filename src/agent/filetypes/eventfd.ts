/** eventfd: the counter and the semaphore mode, from fdinfo. */
import { fdinfoField } from '../procfs/fdinfo.js';
import { O } from '../model.js';
import { ownerOf } from '../replay-steps/by-path.js';
import type { PlanContext } from '../replay-steps/types.js';
import { byAnonLink } from './leak-identity.js';
import type { FileTypeOps, RestoreUnitOf } from './types.js';

/** An eventfd's state in the model. */
export interface EventfdData {
  type: 'eventfd';
  count: bigint;
  semaphore: boolean;
}

declare module '../model.js' {
  interface FileDataByType {
    eventfd: EventfdData;
  }
}

const EFD_SEMAPHORE = 1;

/** eventfd2 with the saved count and mode, then placement. */
function restoreEventfd(unit: RestoreUnitOf<'eventfd'>, ctx: PlanContext): 'done' {
  const b = ctx.builder;
  const { count, semaphore } = unit.file.data;
  const owner = ownerOf(unit);
  const cloexec = b.nextCloexec(unit.targets);
  const flags = (semaphore ? EFD_SEMAPHORE : 0) | (unit.file.flags & O.NONBLOCK) | (cloexec ? O.CLOEXEC : 0);
  // eventfd2 takes an unsigned int initial value; larger counts are written.
  const small = count <= 0xffffffffn;
  const tmp = b.sim.alloc();
  b.add('eventfd2', [small ? count : 0n, flags], tmp, owner);
  if (!small) {
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64LE(count);
    b.add('write', [tmp, b.addData(bytes), 8], 8, owner);
  }
  b.place(tmp, unit.targets, cloexec, owner);
  return 'done';
}

export const eventfd = {
  type: 'eventfd',
  detectTier: 'link',
  detect: (link) => link === 'anon_inode:[eventfd]',
  checkpoint: (probe) => {
    // The kernel prints the count in hex ("%16llx").
    const count = fdinfoField(probe.fdinfo, 'eventfd-count');
    if (count === undefined)
      throw new Error(`pid ${probe.pid} fd ${probe.fd}: eventfd without eventfd-count in fdinfo`);
    return {
      type: 'eventfd',
      count: BigInt(`0x${count}`),
      semaphore: fdinfoField(probe.fdinfo, 'eventfd-semaphore') === '1',
    };
  },
  collect: () => [],
  restore: restoreEventfd,
  leakIdentity: byAnonLink,
} satisfies FileTypeOps<'eventfd'>;
