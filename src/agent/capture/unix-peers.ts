/**
 * Unix socket peers the capture could not read from the socket itself, filled in
 * from sock_diag after the tables are read. Here, not in collect, because capture
 * runs it; the leak check calls it again for the peers a capture left unknown.
 */
import { readlinkSync } from 'node:fs';
import type { Checkpoint, FileRecord } from '../model.js';
import { unixPeers } from '../linux/sockdiag.js';
import { AF_UNIX } from '../linux/socket.js';

/**
 * Fills in unix socket peers (data.peerIno) the capture could not see, from
 * sock_diag in each network namespace the pod's processes live in.
 */
export function fillUnixPeers(cp: Checkpoint, pids: readonly number[], warnings: string[] = []): void {
  const sockets = cp.files.filter(
    (f): f is FileRecord & { data: { type: 'socket' } } =>
      f.data.type === 'socket' && f.data.family === AF_UNIX && f.data.peerIno === undefined,
  );
  if (sockets.length === 0) return;
  const namespaces = new Map<string, number>();
  for (const pid of pids) {
    try {
      const ns = readlinkSync(`/proc/${pid}/ns/net`);
      if (!namespaces.has(ns)) namespaces.set(ns, pid);
    } catch {
      // exited since the capture
    }
  }
  const peers = new Map<number, number>();
  for (const [ns, pid] of namespaces) {
    try {
      for (const [a, b] of unixPeers(`/proc/${pid}/ns/net`)) peers.set(a, b);
    } catch (err) {
      warnings.push(`unix socket peers in ${ns} (of pid ${pid}) unknown: ${(err as Error).message}`);
    }
  }
  for (const s of sockets) {
    const peer = peers.get(s.data.sockIno);
    if (peer !== undefined && peer !== 0) s.data.peerIno = peer;
  }
}
