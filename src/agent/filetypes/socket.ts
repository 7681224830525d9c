/**
 * Sockets: recorded (family, type, protocol, state, addresses) for inspect and
 * leak detection; not restorable yet.
 */
import { describeSocket } from '../linux/socket.js';
import type { FileTypeOps } from './types.js';

export const socket = {
  type: 'socket',
  restorable: false,
  detect: (link) => link.startsWith('socket:['),
  checkpoint: (probe) => ({ type: 'socket', sockIno: probe.stat.ino, ...describeSocket(probe.copy) }),
  collect: (file) =>
    file.data.peerIno === undefined
      ? []
      : [{ kind: 'socket', id: `socket:[${file.data.peerIno}]`, via: 'peer' }],
} satisfies FileTypeOps<'socket'>;
