/**
 * getrusage(RUSAGE_CHILDREN): CPU time of all our reaped children, to the
 * microsecond. Benchmarks take the difference around one child's run: its CPU
 * cost, which load from other processes does not inflate the way it does wall time.
 */
import { lib, koffi } from './libc.js';
import { SyscallError } from './errors.js';

const RUSAGE_CHILDREN = -1;
/** struct rusage on x86-64: two struct timeval (16 bytes each), then 14 longs. */
const RUSAGE_SIZE = 144;

const getrusage = lib.func('int getrusage(int who, _Out_ uint8_t *usage)') as (
  who: number,
  buf: Buffer,
) => number;

/** User and system CPU time, ms. */
export interface CpuTimes {
  userMs: number;
  sysMs: number;
}

/** CPU time used so far by this process's terminated and waited-for children. */
export function childrenCpu(): CpuTimes {
  const buf = Buffer.alloc(RUSAGE_SIZE);
  if (getrusage(RUSAGE_CHILDREN, buf) === -1)
    throw new SyscallError('getrusage', koffi.errno(), 'RUSAGE_CHILDREN');
  const ms = (off: number): number =>
    Number(buf.readBigInt64LE(off)) * 1000 + Number(buf.readBigInt64LE(off + 8)) / 1000;
  return { userMs: ms(0), sysMs: ms(16) };
}
