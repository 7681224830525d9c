/** Any other anon-inode file (pidfd, io_uring, bpf, fanotify, ...): recorded by name, never restored. */
import { byAnonLink } from './leak-identity.js';
import type { FileTypeOps } from './types.js';

/** Any other anon-inode file: its name only. */
export interface AnonData {
  type: 'anon';
  name: string;
}

declare module '../model.js' {
  interface FileDataByType {
    anon: AnonData;
  }
}

export const anon = {
  type: 'anon',
  detectTier: 'fallback',
  detect: () => true,
  checkpoint: (probe) => ({ type: 'anon', name: probe.link.replace(/^anon_inode:/, '') }),
  collect: () => [],
  leakIdentity: byAnonLink,
} satisfies FileTypeOps<'anon'>;
