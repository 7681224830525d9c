/**
 * Pseudo-terminals: the master (/dev/ptmx, index from fdinfo `tty-index`) and
 * slaves (/dev/pts/N). Other terminals are recorded with index -1. Not restorable yet.
 */
import { fdinfoField } from '../procfs/fdinfo.js';
import { devMajor } from '../linux/devt.js';
import { statSync } from 'node:fs';
import type { FileRecord } from '../model.js';
import { ptyKey } from '../procfs/keys.js';
import type { DataOf, FileTypeOps, HolderFd, LeakIdentity } from './types.js';

/** A terminal's state in the model: the pty index (-1 for other terminals) and which end. */
export interface TtyData {
  type: 'tty';
  index: number;
  master: boolean;
}

declare module '../model.js' {
  interface FileDataByType {
    tty: TtyData;
  }
}

const PTS_MAJOR_FIRST = 136;
const PTS_MAJOR_LAST = 143;
const TTYAUX_MAJOR = 5;
const TTY_MAJOR = 4;

function isTerminal(link: string, rdev: number): boolean {
  const m = devMajor(rdev);
  return (
    (m >= PTS_MAJOR_FIRST && m <= PTS_MAJOR_LAST) ||
    m === TTY_MAJOR ||
    (m === TTYAUX_MAJOR && link.endsWith('ptmx'))
  );
}

function devptsDevOf(pid: number): number {
  return statSync(`/proc/${pid}/root/dev/pts`, { throwIfNoEntry: false })?.dev ?? -1;
}

/** A pty end: the devpts instance and index (a master opened via /dev/ptmx uses its opener's /dev/pts). */
function ttyIdentity(file: FileRecord & { data: DataOf<'tty'> }, holder: HolderFd): LeakIdentity {
  if (file.data.index < 0) return {};
  const dev = !file.data.master || file.path.endsWith('/pts/ptmx') ? file.dev : devptsDevOf(holder.pid);
  return { selfKey: ptyKey(dev, file.data.index) };
}

export const tty = {
  type: 'tty',
  readsNoCopy: true,
  detectTier: 'special',
  detect: (link, stat) => link.startsWith('/') && stat.isCharacterDevice() && isTerminal(link, stat.rdev),
  checkpoint: (probe) => {
    const master = probe.link.endsWith('ptmx');
    const pts = /^\/dev\/pts\/(\d+)$/.exec(probe.link);
    const index = master ? Number(fdinfoField(probe.fdinfo, 'tty-index') ?? -1) : pts ? Number(pts[1]) : -1;
    return { type: 'tty', index, master };
  },
  collect: (file) =>
    file.data.index < 0
      ? []
      : [{ kind: 'tty', id: `pty:${file.data.index}`, via: file.data.master ? 'master' : 'slave' }],
  leakIdentity: ttyIdentity,
  sameObjectVia: 'pty peer',
} satisfies FileTypeOps<'tty'>;
