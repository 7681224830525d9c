/** Real images for the transfer tests: the server reads the binding in the header of what it serves. */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeImage } from '../../src/agent/image/index.js';
import { O } from '../../src/agent/model.js';
import type { Checkpoint } from '../../src/api/index.js';

export interface Binding {
  namespace: string;
  name: string;
  uid: string;
}

/** The binding an agent's capture gives the image of `c`. */
export const bindingOf = (c: Checkpoint): Binding => ({
  namespace: c.metadata.namespace ?? '',
  name: c.metadata.name ?? '',
  uid: c.metadata.uid ?? '',
});

/**
 * Writes at `path` an image bound to `binding` (none: unbound, as the CLI writes), with
 * `contents` as a memfd's bytes to give it some size; returns the file's bytes.
 */
export async function writeBoundImage(
  path: string,
  binding: Binding | undefined,
  contents = Buffer.alloc(0),
): Promise<Buffer> {
  mkdirSync(dirname(path), { recursive: true });
  const memfd = {
    objref: 2,
    type: 'memfd' as const,
    flags: O.RDWR,
    pos: 0,
    path: '/memfd:pad (deleted)',
    mntId: 0,
    dev: 0,
    ino: 2,
    mode: 0o100777,
    data: { type: 'memfd' as const, name: 'pad', size: contents.length, seals: 0, contents },
  };
  await writeImage(path, {
    header: {
      node: 'n1',
      source: 'default/src',
      time: Date.now(),
      kernel: 'k',
      tool: 'test',
      ...(binding ? { binding: { ...binding, podUid: 'pod-uid' } } : {}),
    },
    processes: [{ pid: 7, tgid: 7, comm: 'x', argv: ['x'], cwd: '/', table: 1 }],
    tables: [{ objref: 1, fds: [{ fd: 3, file: 2, cloexec: false }] }],
    files: [memfd],
  });
  return readFileSync(path);
}
