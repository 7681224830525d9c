/** What can be read about a socket from a copy of its fd. */
import { koffi, lib, libc } from './libc.js';
import { SyscallError, errnoName } from './errors.js';
import { SO_ACCEPTCONN, SO_DOMAIN, SO_PROTOCOL, SO_TYPE, getSockOptInt } from './process.js';

type AddrFn = (fd: number, addr: Buffer, len: Uint32Array) => number;
const getsockname = lib.func('int getsockname(int fd, _Out_ void *addr, _Inout_ uint32_t *len)') as AddrFn;
const getpeername = lib.func('int getpeername(int fd, _Out_ void *addr, _Inout_ uint32_t *len)') as AddrFn;

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_KEEPALIVE = 9;
export const SO_REUSEPORT = 15;
export const IPPROTO_TCP = 6;
export const TCP_NODELAY = 1;
export const IPPROTO_IPV6 = 41;
export const IPV6_V6ONLY = 26;

/** A sockaddr rendered for people: a unix path (`@name` when abstract), `ip:port`, `[ip6]:port`. */
export function formatSockaddr(addr: Buffer, len: number): string {
  const family = addr.readUInt16LE(0);
  if (family === AF_UNIX) {
    const path = addr.subarray(2, len);
    if (path.length === 0) return '';
    if (path[0] === 0) return `@${path.subarray(1).toString('utf8')}`;
    const nul = path.indexOf(0);
    return path.subarray(0, nul < 0 ? path.length : nul).toString('utf8');
  }
  if (family === AF_INET) return `${[...addr.subarray(4, 8)].join('.')}:${addr.readUInt16BE(2)}`;
  if (family === AF_INET6) {
    const groups: string[] = [];
    for (let i = 8; i < 24; i += 2) groups.push(addr.readUInt16BE(i).toString(16));
    return `[${groups.join(':')}]:${addr.readUInt16BE(2)}`;
  }
  return `family ${family}`;
}

function address(fn: AddrFn, fd: number): string | undefined {
  const addr = Buffer.alloc(128);
  const len = new Uint32Array([128]);
  if (fn(fd, addr, len) === -1) return undefined;
  return formatSockaddr(addr, Math.min(len[0]!, 128));
}

export interface SocketFacts {
  family: number;
  sockType: number;
  protocol: number;
  state: string;
  localAddress?: string;
}

/** Family, type, protocol, state and local address of the socket `fd` (an fd of this process). */
export function describeSocket(fd: number): SocketFacts {
  const family = getSockOptInt(fd, SO_DOMAIN);
  const facts: SocketFacts = {
    family,
    sockType: getSockOptInt(fd, SO_TYPE),
    protocol: getSockOptInt(fd, SO_PROTOCOL),
    state: 'unconnected',
  };
  if (getSockOptInt(fd, SO_ACCEPTCONN) === 1) facts.state = 'listen';
  else if (address(getpeername, fd) !== undefined) facts.state = 'connected';
  else if (errnoName(koffi.errno()) !== 'ENOTCONN') facts.state = 'unknown';
  const local = address(getsockname, fd);
  if (local) facts.localAddress = local;
  return facts;
}

/** What a listening socket needs to listen again, read from a copy of its fd (the backlog is sock_diag's). */
export interface ListenOptions {
  /** getsockname's raw struct sockaddr. */
  address: Buffer;
  reuseAddr: boolean;
  reusePort: boolean;
  keepAlive: boolean;
  v6Only: boolean;
  noDelay: boolean;
}

/** The bound address and the options of the listening socket `fd` of family `family`. */
export function listenOptions(fd: number, family: number, protocol: number): ListenOptions {
  const addr = Buffer.alloc(128);
  const len = new Uint32Array([128]);
  if (getsockname(fd, addr, len) === -1) throw new SyscallError('getsockname', koffi.errno(), `fd ${fd}`);
  const on = (name: number, level = SOL_SOCKET): boolean => getSockOptInt(fd, name, level) !== 0;
  return {
    address: Buffer.from(addr.subarray(0, Math.min(len[0]!, 128))),
    reuseAddr: on(SO_REUSEADDR),
    reusePort: on(SO_REUSEPORT),
    keepAlive: on(SO_KEEPALIVE),
    v6Only: family === AF_INET6 && on(IPV6_V6ONLY, IPPROTO_IPV6),
    noDelay: family !== AF_UNIX && protocol === IPPROTO_TCP && on(TCP_NODELAY, IPPROTO_TCP),
  };
}

const connectC = lib.func('int connect(int fd, const void *addr, uint32_t len)') as (
  fd: number,
  addr: Buffer,
  len: number,
) => number;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;

/**
 * Whether something listens on the unix socket at `address` (a raw
 * sockaddr_un), found by connecting to it as a client would: 'stale' when
 * the kernel refuses (ECONNREFUSED: the file is left by a process that is
 * gone), 'listening' when it connects or would block (EAGAIN: a full
 * backlog is a live server too), else the errno name as `error` (ENOENT, EACCES, …).
 * The connection, if made, is closed at once: the server sees a client come
 * and go.
 */
export function unixListener(address: Buffer, sockType: number): 'listening' | 'stale' | { error: string } {
  const fd = libc.socket(AF_UNIX, sockType | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd === -1) throw new SyscallError('socket', koffi.errno(), 'AF_UNIX probe');
  try {
    if (connectC(fd, address, address.length) === 0) return 'listening';
    const code = errnoName(koffi.errno());
    if (code === 'ECONNREFUSED') return 'stale';
    return code === 'EAGAIN' || code === 'EINPROGRESS' ? 'listening' : { error: code };
  } finally {
    libc.close(fd);
  }
}
