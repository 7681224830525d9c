/**
 * Unix socket peers from the kernel's sock_diag netlink interface
 * (NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY with UDIAG_SHOW_PEER): for every unix
 * socket of a network namespace, the inode of the socket it is connected to.
 * Nothing else tells who the other end of a socketpair is.
 *
 * sock_diag answers for the namespace the netlink socket was created in, so
 * to ask about a pod's namespace we setns() this thread into it, create the
 * socket, and setns() back before doing anything else.
 */
import { openSync, closeSync } from 'node:fs';
import { lib, koffi } from './libc.js';
import { SyscallError } from './errors.js';

const c = {
  socket: lib.func('int socket(int domain, int type, int protocol)') as (
    d: number,
    t: number,
    p: number,
  ) => number,
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
  close: lib.func('int close(int fd)') as (fd: number) => number,
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

/** nlmsghdr + unix_diag_req asking for every unix socket and its peer. */
function dumpRequest(): Buffer {
  const req = Buffer.alloc(16 + 24);
  req.writeUInt32LE(req.length, 0); // nlmsg_len
  req.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
  req.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
  req.writeUInt32LE(1, 8); // seq
  req.writeUInt8(AF_UNIX, 16); // sdiag_family
  req.writeUInt32LE(0xffffffff, 20); // udiag_states: all
  req.writeUInt32LE(UDIAG_SHOW_PEER, 28); // udiag_show
  return req;
}

/**
 * Map from unix socket inode to its peer's inode, for every connected unix
 * socket in the namespace (`/proc/PID/ns/net`, default: ours).
 */
export function unixPeers(netnsPath?: string): Map<number, number> {
  const where = netnsPath ?? 'our netns';
  const fd = diagSocket(netnsPath);
  const peers = new Map<number, number>();
  try {
    const req = dumpRequest();
    if (Number(c.send(fd, req, req.length, 0)) !== req.length)
      throw new SyscallError('send', koffi.errno(), `sock_diag, ${where}`);
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const n = Number(c.recv(fd, buf, buf.length, 0));
      if (n < 0) throw new SyscallError('recv', koffi.errno(), `sock_diag, ${where}`);
      if (n === 0) return peers;
      for (let off = 0; off + 16 <= n;) {
        const len = buf.readUInt32LE(off);
        const type = buf.readUInt16LE(off + 4);
        if (len < 16 || off + len > n)
          throw new Error(`sock_diag (${where}): malformed netlink message at byte ${off}`);
        if (type === NLMSG_DONE) return peers;
        if (type === NLMSG_ERROR) {
          const errno = -buf.readInt32LE(off + 16);
          throw new SyscallError('sock_diag', errno, `SOCK_DIAG_BY_FAMILY AF_UNIX, ${where}`);
        }
        parseUnixDiag(buf.subarray(off + 16, off + len), peers);
        off += (len + 3) & ~3;
      }
    }
  } finally {
    c.close(fd);
  }
}

/** unix_diag_msg (16 bytes: family, type, state, pad, ino, cookie[2]) then rtattrs. */
function parseUnixDiag(msg: Buffer, peers: Map<number, number>): void {
  if (msg.length < 16) return;
  const ino = msg.readUInt32LE(4);
  for (let off = 16; off + 4 <= msg.length;) {
    const len = msg.readUInt16LE(off);
    const type = msg.readUInt16LE(off + 2);
    if (len < 4) return;
    if (type === UNIX_DIAG_PEER && len >= 8) peers.set(ino, msg.readUInt32LE(off + 4));
    off += (len + 3) & ~3;
  }
}
