/**
 * Socket: family u16, type u32, protocol u32, state string, socket inode u64,
 * then two optional fields (presence byte each): peer inode u64, local address string.
 */
import type { FileDataCodec } from './types.js';
import type { DataOf } from './types.js';

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
  },
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
    return d;
  },
};
