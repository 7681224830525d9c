/**
 * Pipe end: pipe inode u64, end u8 (0 read, 1 write), buffered byte count
 * u32, then an optional (presence byte) length-prefixed copy of those bytes.
 */
import { RecordViolation } from '../errors.js';
import type { FileDataCodec } from './types.js';
import { maskInodeNumber } from './inode-name.js';

export const pipe: FileDataCodec<'pipe'> = {
  type: 'pipe',
  id: 4,
  encode(w, d) {
    w.u64n('pipeIno', d.pipeIno);
    if (d.end !== 'read' && d.end !== 'write')
      throw new RecordViolation(`field end: ${String(d.end)} is not read/write`);
    w.u8('end', d.end === 'read' ? 0 : 1);
    w.u32('bufferedBytes', d.bufferedBytes);
    w.bool('buffered present', d.buffered !== undefined);
    if (d.buffered !== undefined) w.blob('buffered', d.buffered);
  },
  comparablePath: maskInodeNumber,
  decode(r) {
    const pipeIno = r.u64n('pipeIno');
    const end = r.u8('end');
    if (end > 1) throw new RecordViolation(`field end: invalid pipe end ${end} (0 read, 1 write)`);
    const bufferedBytes = r.u32('bufferedBytes');
    const data = {
      type: 'pipe' as const,
      pipeIno,
      end: end === 0 ? ('read' as const) : ('write' as const),
      bufferedBytes,
    };
    return r.bool('buffered present') ? { ...data, buffered: r.blob('buffered') } : data;
  },
};
