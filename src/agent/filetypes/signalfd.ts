/** signalfd: the signal mask (fdinfo `sigmask`, hex). */
import { fdinfoField } from '../capture/fdinfo.js';
import type { FileTypeOps } from './types.js';

export const signalfd = {
  type: 'signalfd',
  restorable: false,
  detect: (link) => link === 'anon_inode:[signalfd]',
  checkpoint: (probe) => ({
    type: 'signalfd',
    sigmask: BigInt(`0x${fdinfoField(probe.fdinfo, 'sigmask') ?? '0'}`),
  }),
  collect: () => [],
} satisfies FileTypeOps<'signalfd'>;
