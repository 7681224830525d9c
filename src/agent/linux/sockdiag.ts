/**
 * The kernel's sock_diag netlink interface (NETLINK_SOCK_DIAG,
 * SOCK_DIAG_BY_FAMILY): for every unix socket of a network namespace, the
 * inode of the socket it is connected to (UDIAG_SHOW_PEER: nothing else tells
 * who the other end of a socketpair is); and for listening sockets, the
 * backlog they were given (no getsockopt reads it back).
 *
 * sock_diag answers for the namespace the netlink socket was created in, so
 * to ask about a pod's namespace we setns() this thread into it, create the
 * socket, and setns() back before doing anything else.
 */
import { openSync, closeSync } from 'node:fs';
import { koffi, lib, libc } from './libc.js';
import { SyscallError } from './errors.js';

const c = {
  socket: libc.socket,
  send: lib.func('long send(int fd, const void *buf, size_t n, int flags)') as (
    fd: number,
    buf: Buffer,
    n: number,
    flags: number,
  ) => number | bigint,
  recv: lib.func('long recv(int fd, _Out_ void *buf, size_t n, int flags)') as (
    fd: number,
    buf: Buffer,
    n: number,
    flags: number,
  ) => number | bigint,
  close: libc.close,
  setns: lib.func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number,
};

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const AF_UNIX = 1;
const UDIAG_SHOW_PEER = 0x4;
const UNIX_DIAG_PEER = 2;
const UDIAG_SHOW_RQLEN = 0x10;
const UNIX_DIAG_RQLEN = 4;
const AF_INET = 2;
const IPPROTO_TCP = 6;
const TCP_LISTEN = 10;
const CLONE_NEWNET = 0x40000000;

function check(result: number, syscall: string, object: string): number {
  if (result === -1) throw new SyscallError(syscall, koffi.errno(), object);
  return result;
}

/** A sock_diag netlink socket in the network namespace `netnsPath` (or ours). */
function diagSocket(netnsPath?: string): number {
  if (netnsPath === undefined) {
    return check(
      c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG),
      'socket',
      'AF_NETLINK sock_diag',
    );
  }
  const ours = openSync('/proc/thread-self/ns/net', 'r');
  const theirs = openSync(netnsPath, 'r');
  try {
    check(c.setns(theirs, CLONE_NEWNET), 'setns', netnsPath);
    try {
      return check(
        c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG),
        'socket',
        `sock_diag in ${netnsPath}`,
      );
    } finally {
      // Going back must not fail silently: the rest of the process would live in the pod's namespace.
      check(c.setns(ours, CLONE_NEWNET), 'setns', '/proc/thread-self/ns/net (back to our own)');
    }
  } finally {
    closeSync(theirs);
    closeSync(ours);
  }
}

/** nlmsghdr + a SOCK_DIAG_BY_FAMILY dump request whose body (after sdiag_family) is `body`. */
function dumpRequest(body: Buffer): Buffer {
  const req = Buffer.alloc(16 + body.length);
  req.writeUInt32LE(req.length, 0); // nlmsg_len
  req.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
  req.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
  req.writeUInt32LE(1, 8); // seq
  body.copy(req, 16);
  return req;
}

/** unix_diag_req: family, protocol, pad, states, ino, show, cookie[2] (24 bytes). */
function unixRequest(states: number, show: number): Buffer {
  const body = Buffer.alloc(24);
  body.writeUInt8(AF_UNIX, 0); // sdiag_family
  body.writeUInt32LE(states, 4); // udiag_states
  body.writeUInt32LE(show, 12); // udiag_show
  return body;
}

/** Sends a dump request and hands each answer's payload to `each`, until NLMSG_DONE. */
function dump(netnsPath: string | undefined, body: Buffer, what: string, each: (msg: Buffer) => void): void {
  const where = netnsPath ?? 'our netns';
  const fd = diagSocket(netnsPath);
  try {
    const req = dumpRequest(body);
    if (Number(c.send(fd, req, req.length, 0)) !== req.length)
      throw new SyscallError('send', koffi.errno(), `sock_diag, ${where}`);
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const n = Number(c.recv(fd, buf, buf.length, 0));
      if (n < 0) throw new SyscallError('recv', koffi.errno(), `sock_diag, ${where}`);
      if (n === 0) return;
      for (let off = 0; off + 16 <= n;) {
        const len = buf.readUInt32LE(off);
        const type = buf.readUInt16LE(off + 4);
        if (len < 16 || off + len > n)
          throw new Error(`sock_diag (${where}): malformed netlink message at byte ${off}`);
        if (type === NLMSG_DONE) return;
        if (type === NLMSG_ERROR) {
          const errno = -buf.readInt32LE(off + 16);
          throw new SyscallError('sock_diag', errno, `SOCK_DIAG_BY_FAMILY ${what}, ${where}`);
        }
        each(buf.subarray(off + 16, off + len));
        off += (len + 3) & ~3;
      }
    }
  } finally {
    c.close(fd);
  }
}

/** The rtattrs after a fixed-size message header: (type, payload) pairs. */
function* attrs(msg: Buffer, from: number): Generator<[number, Buffer]> {
  for (let off = from; off + 4 <= msg.length;) {
    const len = msg.readUInt16LE(off);
    if (len < 4) return;
    yield [msg.readUInt16LE(off + 2), msg.subarray(off + 4, off + len)];
    off += (len + 3) & ~3;
  }
}

/**
 * Map from unix socket inode to its peer's inode, for every connected unix
 * socket in the namespace (`/proc/PID/ns/net`, default: ours).
 */
export function unixPeers(netnsPath?: string): Map<number, number> {
  const peers = new Map<number, number>();
  // unix_diag_msg (16 bytes: family, type, state, pad, ino, cookie[2]) then rtattrs.
  dump(netnsPath, unixRequest(0xffffffff, UDIAG_SHOW_PEER), 'AF_UNIX', (msg) => {
    if (msg.length < 16) return;
    for (const [type, value] of attrs(msg, 16)) {
      if (type === UNIX_DIAG_PEER && value.length >= 4) peers.set(msg.readUInt32LE(4), value.readUInt32LE(0));
    }
  });
  return peers;
}

/**
 * Map from socket inode to listen backlog (sk_max_ack_backlog) for the
 * listening sockets of `family` (AF_UNIX, or AF_INET/AF_INET6 for TCP) in the
 * namespace: unix_diag's RQLEN and inet_diag's idiag_wqueue carry it.
 */
export function listenBacklogs(family: number, netnsPath?: string): Map<number, number> {
  const backlogs = new Map<number, number>();
  if (family === AF_UNIX) {
    dump(netnsPath, unixRequest(1 << TCP_LISTEN, UDIAG_SHOW_RQLEN), 'AF_UNIX', (msg) => {
      if (msg.length < 16) return;
      for (const [type, value] of attrs(msg, 16)) {
        // struct unix_diag_rqlen { udiag_rqueue; udiag_wqueue }: for a listener, wqueue is the backlog.
        if (type === UNIX_DIAG_RQLEN && value.length >= 8)
          backlogs.set(msg.readUInt32LE(4), value.readUInt32LE(4));
      }
    });
    return backlogs;
  }
  // inet_diag_req_v2: family, protocol, ext, pad, states, inet_diag_sockid (48 bytes).
  const body = Buffer.alloc(56);
  body.writeUInt8(family, 0);
  body.writeUInt8(IPPROTO_TCP, 1);
  body.writeUInt32LE(1 << TCP_LISTEN, 4);
  const what = family === AF_INET ? 'AF_INET' : `family ${family}`;
  // inet_diag_msg: family, state, timer, retrans, sockid (48), expires, rqueue, wqueue@60, uid, inode@68.
  dump(netnsPath, body, what, (msg) => {
    if (msg.length >= 72) backlogs.set(msg.readUInt32LE(68), msg.readUInt32LE(60));
  });
  return backlogs;
}
