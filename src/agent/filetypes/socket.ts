/**
 * Sockets: recorded (family, type, protocol, state, addresses) for inspect and
 * leak detection. Listening sockets (TCP over IPv4/IPv6, unix stream and
 * seqpacket) are restorable: a server pod's most common fd. So are unix
 * socketpairs with both ends in the table (socketpair.ts). Other connected
 * sockets are not (a TCP connection needs TCP_REPAIR).
 */
import { statPath } from '../linux/pathstat.js';
import { listenBacklogs } from '../linux/sockdiag.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPV6_V6ONLY,
  SOL_SOCKET,
  SO_KEEPALIVE,
  SO_REUSEADDR,
  SO_REUSEPORT,
  TCP_NODELAY,
  describeSocket,
  listenOptions,
  unixListener,
} from '../linux/socket.js';
import { S_IFMT, S_IFSOCK } from '../linux/stat.js';
import { O } from '../model.js';
import { ownerOf } from '../replay-steps/by-path.js';
import { ReplayError } from '../replay-steps/errors.js';
import type { PlanContext } from '../replay-steps/types.js';
import { isPairEnd, restorePair } from './socketpair.js';
import type { DataOf, FileTypeOps, RestoreUnitOf } from './types.js';

/** A socket's state in the model. */
export interface SocketData {
  type: 'socket';
  family: number;
  sockType: number;
  protocol: number;
  /** 'listen', 'connected', 'unconnected', ... as far as we can tell. */
  state: string;
  sockIno: number;
  /** inode of the connected peer, for unix sockets (leak detection). */
  peerIno?: number;
  localAddress?: string;
  /** For a listening socket: what replay needs to listen again. */
  listen?: ListenState;
}

/** A listening socket's bound address, backlog and the options bind and accepted sockets depend on. */
export interface ListenState {
  /** The bound address as getsockname(2) returned it: a raw struct sockaddr. */
  address: Buffer;
  /** The listen(2) backlog (sock_diag: sk_max_ack_backlog). */
  backlog: number;
  reuseAddr: boolean;
  reusePort: boolean;
  keepAlive: boolean;
  /** IPV6_V6ONLY, AF_INET6 only. */
  v6Only: boolean;
  /** TCP_NODELAY, TCP only. */
  noDelay: boolean;
}

declare module '../model.js' {
  interface FileDataByType {
    socket: SocketData;
  }
}

const SOCK_STREAM = 1;
const SOCK_SEQPACKET = 5;

/** Whether replay knows how to listen again on a socket of this family and type. */
function listenable(d: Pick<DataOf<'socket'>, 'family' | 'sockType' | 'protocol'>): boolean {
  if (d.family === AF_UNIX) return d.sockType === SOCK_STREAM || d.sockType === SOCK_SEQPACKET;
  return (
    (d.family === AF_INET || d.family === AF_INET6) &&
    d.sockType === SOCK_STREAM &&
    d.protocol === IPPROTO_TCP
  );
}

/** A unix socket's filesystem path from its raw sockaddr_un, or undefined when abstract or unnamed. */
export function unixPath(address: Buffer): string | undefined {
  const path = address.subarray(2);
  if (path.length === 0 || path[0] === 0) return undefined;
  const nul = path.indexOf(0);
  return path.subarray(0, nul < 0 ? path.length : nul).toString('utf8');
}

/**
 * socket, the saved options, bind to the saved address, listen with the saved
 * backlog, then placement. Connections that were waiting in the accept queue
 * at capture are not carried over: their clients see a reset.
 */
function restoreSocket(unit: RestoreUnitOf<'socket'>, ctx: PlanContext): 'done' {
  const b = ctx.builder;
  const owner = ownerOf(unit);
  const d = unit.file.data;
  if (isPairEnd(d)) return restorePair(unit, ctx);
  const fd = unit.targets[0]!.fd;
  const listen: ListenState | undefined = d.listen;
  if (listen === undefined || !listenable(d)) {
    throw new ReplayError(fd, unit.path, `only listening sockets can be restored (this one is ${d.state})`);
  }
  const path = d.family === AF_UNIX ? unixPath(listen.address) : undefined;
  if (path !== undefined) {
    // The socket file of the process that was checkpointed stays behind it: remove it, but nothing else.
    if (!path.startsWith('/')) throw new ReplayError(fd, path, 'unix socket bound to a relative path');
    const st = statPath(path);
    if (!('error' in st) && (st.mode & S_IFMT) !== S_IFSOCK) {
      throw new ReplayError(fd, path, 'the unix socket path exists and is not a socket');
    }
    if (!('error' in st)) {
      // Only a stale file may go: if the original server still runs (a restore beside
      // it, a copy of a live pod), unlinking would take its address away from it.
      const probe = unixListener(listen.address, d.sockType);
      if (probe === 'listening')
        throw new ReplayError(
          fd,
          path,
          'a server is listening on this unix socket: only a stale socket file is removed',
        );
      if (probe !== 'stale') throw new ReplayError(fd, path, `connect to the unix socket: ${probe.error}`);
      b.add('unlink', [b.addPath(path)], 0, owner);
    }
  }
  const cloexec = b.nextCloexec(unit.targets);
  const tmp = b.sim.alloc();
  const type = d.sockType | (unit.file.flags & O.NONBLOCK) | (cloexec ? O.CLOEXEC : 0);
  b.add('socket', [d.family, type, d.protocol], tmp, owner);
  const one = b.addData(Buffer.from([1, 0, 0, 0]));
  const set = (level: number, name: number): void =>
    b.add('setsockopt', [tmp, level, name, one, 4], 0, owner);
  if (listen.reuseAddr) set(SOL_SOCKET, SO_REUSEADDR);
  if (listen.reusePort) set(SOL_SOCKET, SO_REUSEPORT);
  if (listen.keepAlive) set(SOL_SOCKET, SO_KEEPALIVE);
  // IPV6_V6ONLY defaults to the sysctl (bindv6only, 0 normally): set it either way, before bind.
  if (d.family === AF_INET6) {
    const v6 = b.addData(Buffer.from([listen.v6Only ? 1 : 0, 0, 0, 0]));
    b.add('setsockopt', [tmp, IPPROTO_IPV6, IPV6_V6ONLY, v6, 4], 0, owner);
  }
  if (listen.noDelay) set(IPPROTO_TCP, TCP_NODELAY);
  b.add('bind', [tmp, b.addData(listen.address), listen.address.length], 0, owner);
  b.add('listen', [tmp, listen.backlog], 0, owner);
  b.place(tmp, unit.targets, cloexec, owner);
  return 'done';
}

export const socket = {
  type: 'socket',
  detectTier: 'link',
  detect: (link) => link.startsWith('socket:['),
  checkpoint: (probe) => {
    const facts = describeSocket(probe.copy);
    const data: DataOf<'socket'> = { type: 'socket', sockIno: probe.stat.ino, ...facts };
    if (facts.state !== 'listen' || !listenable(facts)) return data;
    const backlog = listenBacklogs(facts.family, `/proc/${probe.pid}/ns/net`).get(probe.stat.ino);
    if (backlog === undefined) return data; // not seen by sock_diag: recorded, refused below
    return { ...data, listen: { ...listenOptions(probe.copy, facts.family, facts.protocol), backlog } };
  },
  unrestorable: (file) => {
    const d = file.data;
    if (d.listen !== undefined || isPairEnd(d)) return undefined;
    const what = listenable(d)
      ? `this one is ${d.state}`
      : `this one is family ${d.family} type ${d.sockType}`;
    return `only listening TCP and unix sockets and unix socketpairs can be restored, ${what}`;
  },
  collect: (file) =>
    file.data.peerIno === undefined
      ? []
      : [{ kind: 'socket', id: `socket:[${file.data.peerIno}]`, via: 'peer' }],
  restore: restoreSocket,
  leakIdentity: (file) => ({ selfKey: `socket:[${file.data.sockIno}]` }),
} satisfies FileTypeOps<'socket'>;
