/**
 * Socket: family u16, type u32, protocol u32, state string, socket inode u64,
 * then three optional fields (presence byte each): peer inode u64, local
 * address string, listen state (address bytes, backlog u32, options u8).
 */
import { RecordViolation } from '../errors.js';
import type { FileDataCodec } from './types.js';
import { maskInodeNumber } from './inode-name.js';
import type { DataOf } from './types.js';

/** Bits of the listen state's options byte. */
const OPTION_BITS = ['reuseAddr', 'reusePort', 'keepAlive', 'v6Only', 'noDelay'] as const;

export const socket: FileDataCodec<'socket'> = {
  type: 'socket',
  id: 5,
  encode(w, d) {
    w.u16('family', d.family);
    w.u32('sockType', d.sockType);
    w.u32('protocol', d.protocol);
    w.str('state', d.state);
    w.u64n('sockIno', d.sockIno);
    w.bool('peerIno present', d.peerIno !== undefined);
    if (d.peerIno !== undefined) w.u64n('peerIno', d.peerIno);
    w.bool('localAddress present', d.localAddress !== undefined);
    if (d.localAddress !== undefined) w.str('localAddress', d.localAddress);
    w.bool('listen present', d.listen !== undefined);
    if (d.listen !== undefined) {
      const l = d.listen;
      w.blob('listen.address', l.address);
      w.u32('listen.backlog', l.backlog);
      w.u8(
        'listen.options',
        OPTION_BITS.reduce((bits, name, i) => (l[name] ? bits | (1 << i) : bits), 0),
      );
    }
  },
  comparablePath: maskInodeNumber,
  decode(r) {
    const d: DataOf<'socket'> = {
      type: 'socket',
      family: r.u16('family'),
      sockType: r.u32('sockType'),
      protocol: r.u32('protocol'),
      state: r.str('state'),
      sockIno: r.u64n('sockIno'),
    };
    if (r.bool('peerIno present')) d.peerIno = r.u64n('peerIno');
    if (r.bool('localAddress present')) d.localAddress = r.str('localAddress');
    if (r.bool('listen present')) {
      const address = r.blob('listen.address');
      const backlog = r.u32('listen.backlog');
      const bits = r.u8('listen.options');
      if (bits >> OPTION_BITS.length !== 0)
        throw new RecordViolation(`field listen.options: unknown bits 0x${bits.toString(16)}`);
      const on = (i: number): boolean => (bits & (1 << i)) !== 0;
      d.listen = {
        address,
        backlog,
        reuseAddr: on(0),
        reusePort: on(1),
        keepAlive: on(2),
        v6Only: on(3),
        noDelay: on(4),
      };
    }
    return d;
  },
};
