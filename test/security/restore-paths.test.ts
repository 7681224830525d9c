/**
 * Issue 12, item 12: a restore may run as root and opens each saved path as
 * it finds it. A symlink planted at an image's path made a root-only file get
 * a line appended; `..` paths and another file swapped in at the path
 * (`/etc/shadow` O_RDWR) were opened too. Now the reader refuses paths
 * capture could not have written, and the plan refuses a path that is now a
 * symlink or names another file (device and inode) than at capture, unless
 * the policy says allowFileChange — each naming the fd. Real files, the real
 * CLI's dry run and the planner.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/agent/image/index.js';
import type { Checkpoint } from '../../src/agent/model.js';
import { O } from '../../src/agent/model.js';
import {
  DEFAULT_POLICY,
  ReplayError,
  parsePolicy,
  planRestore,
  replayPolicy,
} from '../../src/agent/replay/index.js';
import type { RestorePolicy } from '../../src/agent/replay/index.js';
import { fdckpt } from '../support/cli.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fdckpt-sec-paths-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An image of one process with `path` open O_WRONLY|O_APPEND at fd 4, as capture saw it. */
function imageOf(path: string, ident?: { dev: number; ino: number }): Checkpoint {
  const st = ident ?? statSync(path);
  return {
    header: { node: 'n', source: 's', time: 1, kernel: 'k', tool: 't' },
    processes: [{ pid: 10, tgid: 10, comm: 'c', argv: ['c'], cwd: '/', table: 100 }],
    tables: [{ objref: 100, fds: [{ fd: 4, file: 1, cloexec: false }] }],
    files: [
      {
        objref: 1,
        type: 'regular',
        flags: O.WRONLY | O.APPEND,
        pos: 0,
        path,
        mntId: 1,
        dev: st.dev,
        ino: st.ino,
        mode: 0o100644,
        data: { type: 'regular', size: 0 },
      },
    ],
  };
}

function refusal(cp: Checkpoint, policy: RestorePolicy = DEFAULT_POLICY): ReplayError {
  try {
    planRestore(cp, policy, 10);
  } catch (err) {
    if (err instanceof ReplayError) return err;
    throw err;
  }
  throw new Error('the plan was accepted');
}

describe('restore opens only the file the image saw', () => {
  it('a symlink planted at the saved path is refused, naming the fd; the file it points at is untouched', () => {
    const victim = join(dir, 'root-only');
    writeFileSync(victim, 'secret\n', { mode: 0o600 });
    const log = join(dir, 'app.log');
    writeFileSync(log, '');
    const cp = imageOf(log);
    rmSync(log);
    symlinkSync(victim, log);
    const err = refusal(cp);
    expect(err.fd).toBe(4);
    expect(err.message).toBe(`fd 4 (${log}): is now a symlink; at capture it was the file itself`);
    // The real CLI refuses it before starting anything.
    const img = join(dir, 'link.fdckpt');
    writeFileSync(img, encodeCheckpoint(cp));
    const r = fdckpt('restore', '--image', img, '--dry-run');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`fd 4 (${log}): is now a symlink`);
    expect(readFileSync(victim, 'utf8')).toBe('secret\n');
  });

  it('another file swapped in at the path (another dev:ino) is refused unless the policy allows it', () => {
    const log = join(dir, 'swapped.log');
    writeFileSync(log, 'first');
    const cp = imageOf(log);
    const before = statSync(log);
    renameSync(log, `${log}.old`); // kept, so that the new file cannot reuse its inode
    writeFileSync(log, 'second');
    const now = statSync(log);
    expect(now.ino).not.toBe(before.ino);
    expect(refusal(cp).message).toBe(
      `fd 4 (${log}): another file than at capture (dev:ino ${before.dev}:${before.ino} → ${now.dev}:${now.ino}; policy allowFileChange accepts it)`,
    );
    const allow = parsePolicy(yaml.dump({ rules: [{ path: `${dir}/*`, allowFileChange: true }] }));
    expect(planRestore(cp, allow, 10).fds).toBe(1);
    // /etc/shadow O_RDWR in an image that did not capture it: its identity does not match.
    const shadow = imageOf('/etc/shadow', { dev: before.dev, ino: before.ino });
    shadow.files[0]!.flags = O.RDWR;
    expect(refusal(shadow).message).toMatch(/^fd 4 \(\/etc\/shadow\): another file than at capture/);
  });

  it('into another container (a new pod, a migration) another dev:ino is expected; symlinks and a stricter rule still refuse', () => {
    // In a new container every file is another inode: its own overlay root, the kubelet's
    // per-pod /etc/hostname. Found on a real node (test/node/realnode.test.ts).
    const file = join(dir, 'hostname');
    writeFileSync(file, 'pod-a');
    const cp = imageOf(file);
    renameSync(file, `${file}.old`);
    writeFileSync(file, 'pod-b');
    const inNewPod = replayPolicy('all', DEFAULT_POLICY, { newContainer: true });
    expect(planRestore(cp, inNewPod, 10).fds).toBe(1);
    expect(refusal(cp, replayPolicy('all', DEFAULT_POLICY)).message).toMatch(/another file than at capture/);
    const strict = parsePolicy(yaml.dump({ rules: [{ path: `${dir}/*`, allowFileChange: false }] }));
    expect(refusal(cp, { ...strict, newContainer: true }).message).toMatch(/another file than at capture/);
    const link = join(dir, 'hostname-link');
    symlinkSync(file, link);
    expect(refusal(imageOf(link), inNewPod).message).toMatch(/is now a symlink/);
  });

  it('the same file, unchanged, is still planned', () => {
    const log = join(dir, 'same.log');
    writeFileSync(log, 'x');
    expect(planRestore(imageOf(log), DEFAULT_POLICY, 10).fds).toBe(1);
  });

  it('non-normalized paths are refused by the reader and by the planner, naming the file or fd', () => {
    const good = join(dir, 'good.log');
    writeFileSync(good, '');
    for (const [path, why] of [
      [`${dir}/../${dir.split('/').pop() ?? ''}/good.log`, 'a .. component'],
      [`${dir}//good.log`, 'a doubled /'],
      [`${dir}/./good.log`, 'a . component'],
      [`${dir}/`, 'a trailing /'],
    ] as const) {
      const cp = imageOf(good);
      cp.files[0]!.path = path;
      expect(() => decodeCheckpoint(encodeCheckpoint(cp))).toThrow(
        `file objref 1 (regular) path ${JSON.stringify(path)} has ${why}`,
      );
      expect(refusal(cp).message).toBe(`fd 4 (${path}): not a normalized path (it has ${why})`);
    }
    const relative = imageOf(good);
    relative.files[0]!.path = 'good.log';
    expect(refusal(relative).message).toBe('fd 4 (good.log): not an absolute path');
  });
});

describe('a path that now holds another kind of file is refused, naming what it must be', () => {
  /** The image of `path` saved as a file of `type` with st_mode `mode`; the path is then replaced by `now`. */
  function replaced(type: 'regular' | 'directory' | 'fifo', mode: number, now: 'file' | 'dir'): string {
    const path = join(dir, `kind-${type}-${now}`);
    const cp = imageOf(join(dir, 'good.log'));
    const file = cp.files[0]!;
    Object.assign(file, {
      type,
      mode,
      path,
      flags: O.RDONLY,
      data: { type, ...(type === 'regular' ? { size: 0 } : {}) },
    });
    rmSync(path, { recursive: true, force: true });
    if (now === 'file') writeFileSync(path, '');
    else mkdirSync(path);
    return refusal(cp, { ...DEFAULT_POLICY, newContainer: true }).message;
  }

  it('a directory, a fifo and a regular file each by their own rule', () => {
    writeFileSync(join(dir, 'good.log'), '');
    // The saved st_mode says what it was: another file type is named as such...
    expect(replaced('directory', 0o040755, 'file')).toMatch(
      /: file type changed \(st_mode 0o40000 → 0o100000\)$/,
    );
    expect(replaced('regular', 0o100644, 'dir')).toMatch(
      /: file type changed \(st_mode 0o100000 → 0o40000\)$/,
    );
    // ...and an image without it (mode 0) by what the type reopens.
    expect(replaced('directory', 0, 'file')).toMatch(/: no longer a directory$/);
    expect(replaced('fifo', 0, 'file')).toMatch(/: no longer a fifo$/);
    expect(replaced('regular', 0, 'dir')).toMatch(/: no longer a regular file or device$/);
  });
});
