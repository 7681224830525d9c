/**
 * Which file system each fd's mount is, from /proc/PID/mountinfo (read once
 * per mount namespace). Capture needs it before touching a file: on a FUSE
 * mount every fstat, and even the close of a pidfd_getfd copy (FUSE_FLUSH),
 * is a request to a user-space server — possibly a process of the frozen pod,
 * which answers nothing until the thaw: the capture would wait forever.
 * Reading /proc (fdinfo, the fd link, mountinfo) never asks the server.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { makeDev } from '../linux/devt.js';

/** One mount, as far as capture cares. */
export interface MountFacts {
  fstype: string;
  /** st_dev of files on it (makedev of mountinfo's major:minor). */
  dev: number;
}

/** True for the FUSE family: fuse, fuseblk, fuse.<subtype> (sshfs, s3fs, …). */
export function isFuse(fstype: string): boolean {
  return fstype === 'fuse' || fstype === 'fuseblk' || fstype.startsWith('fuse.');
}

/** Parses mountinfo text into mnt_id → facts (exported for tests). */
export function parseMountinfo(text: string): Map<number, MountFacts> {
  const out = new Map<number, MountFacts>();
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const fstype = line.slice(sep + 3).split(' ')[0] ?? '';
    const [major, minor] = (left[2] ?? '').split(':').map(Number);
    out.set(Number(left[0]), { fstype, dev: makeDev(major ?? 0, minor ?? 0) });
  }
  return out;
}

/** mnt_id lookups for the processes of one capture, cached by mount namespace. */
export class MountTable {
  private readonly byNs = new Map<string, Map<number, MountFacts>>();

  /** The mounts as `pid` sees them: mnt_id → facts (read once per mount namespace). */
  of(pid: number): ReadonlyMap<number, MountFacts> {
    const ns = readlinkSync(`/proc/${pid}/ns/mnt`);
    let table = this.byNs.get(ns);
    if (!table) {
      table = parseMountinfo(readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
      this.byNs.set(ns, table);
    }
    return table;
  }

  /** The mount `mntId` as `pid` sees it, or undefined (internal mounts: pipefs, sockfs, anon inodes…). */
  lookup(pid: number, mntId: number): MountFacts | undefined {
    return this.of(pid).get(mntId);
  }
}

/** The mnt_ids of FUSE mounts in a mount table: what capture must not touch. */
export function fuseMountIds(mounts: ReadonlyMap<number, MountFacts>): number[] {
  const out: number[] = [];
  for (const [id, m] of mounts) if (isFuse(m.fstype)) out.push(id);
  return out;
}
