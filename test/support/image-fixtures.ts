/**
 * Checkpoints for the image tests: one hand-made checkpoint that covers
 * every FileData variant and every optional field, and fast-check
 * arbitraries for random valid checkpoints.
 */
import { createHash } from 'node:crypto';
import { unnormalized } from '../../src/agent/image/paths.js';
import fc from 'fast-check';
import type { Checkpoint, FileData, FileRecord, FileType } from '../../src/agent/model.js';
import { O } from '../../src/agent/model.js';

function file(objref: number, data: FileData, path: string, extra: Partial<FileRecord> = {}): FileRecord {
  return {
    objref,
    type: data.type,
    flags: O.RDONLY,
    pos: 0,
    path,
    mntId: 25,
    dev: 2049,
    ino: 1000 + objref,
    mode: 0o100644,
    data,
    ...extra,
  };
}

/** Two processes sharing open files, one table per process, every file type and optional field. */
export function richCheckpoint(): Checkpoint {
  const files: FileRecord[] = [
    file(1, { type: 'regular', size: 12345 }, '/var/log/app.log', { flags: O.WRONLY | O.APPEND, pos: 12345 }),
    file(2, { type: 'directory' }, '/etc', { flags: O.RDONLY | O.DIRECTORY, mode: 0o40755 }),
    file(3, { type: 'fifo' }, '/run/ctl.fifo', { flags: O.RDWR | O.NONBLOCK, mode: 0o10600 }),
    file(
      4,
      { type: 'pipe', pipeIno: 777, end: 'read', bufferedBytes: 5, buffered: Buffer.from('hello') },
      'pipe:[777]',
    ),
    file(5, { type: 'pipe', pipeIno: 777, end: 'write', bufferedBytes: 0 }, 'pipe:[777]', {
      flags: O.WRONLY,
    }),
    file(
      6,
      {
        type: 'socket',
        family: 1,
        sockType: 1,
        protocol: 0,
        state: 'connected',
        sockIno: 888,
        peerIno: 889,
        localAddress: '@abstract/ü',
      },
      'socket:[888]',
      { flags: O.RDWR },
    ),
    file(
      7,
      { type: 'socket', family: 2, sockType: 2, protocol: 17, state: 'unconnected', sockIno: 890 },
      'socket:[890]',
    ),
    file(8, { type: 'eventfd', count: 0xffff_ffff_ffff_fffen, semaphore: true }, 'anon_inode:[eventfd]', {
      ignored: { reason: 'type' },
    }),
    file(
      9,
      {
        type: 'eventpoll',
        targets: [
          { tfd: 3, events: 1, data: 0xdead_beef_cafe_f00dn, ino: 1003, file: 3 },
          { tfd: 42, events: 0x8000_0004, data: 0n, ino: 5, file: 12 },
          { tfd: 99, events: 4, data: 1n, ino: 6 },
        ],
      },
      'anon_inode:[eventpoll]',
    ),
    file(10, { type: 'tty', index: 3, master: false }, '/dev/pts/3', {
      flags: O.RDWR,
      ignored: { reason: 'fd' },
    }),
    file(
      11,
      { type: 'memfd', name: 'jit-cache', size: 4096, seals: 1, contents: Buffer.from('jit') },
      '/memfd:jit-cache (deleted)',
      {
        flags: O.RDWR,
        pos: 10,
      },
    ),
    file(12, { type: 'signalfd', sigmask: 1n << 63n }, 'anon_inode:[signalfd]'),
    file(
      13,
      {
        type: 'timerfd',
        clockid: 1,
        ticks: 3n,
        settimeFlags: 1,
        valueNs: 999_999_999n,
        intervalNs: 1n << 40n,
      },
      'anon_inode:[timerfd]',
    ),
    file(
      14,
      { type: 'inotify', watches: [{ wd: 1, ino: 2, sdev: 0x800001, mask: 0x100, ignoredMask: 0 }] },
      'anon_inode:inotify',
    ),
    file(15, { type: 'anon', name: '[userfaultfd]' }, 'anon_inode:[userfaultfd]'),
  ];
  return {
    header: {
      node: 'node-a',
      source: 'default/web-0',
      time: 1_790_000_000_123,
      kernel: '6.18.0',
      tool: 'fdckpt 0.1.0',
    },
    files,
    tables: [
      {
        objref: 100,
        fds: [
          { fd: 0, file: 10, cloexec: false },
          { fd: 1, file: 1, cloexec: false },
          { fd: 2, file: 1, cloexec: false },
          { fd: 3, file: 3, cloexec: true },
          { fd: 4, file: 4, cloexec: false },
          { fd: 5, file: 5, cloexec: false },
          { fd: 6, file: 6, cloexec: true },
          { fd: 7, file: 8, cloexec: false },
          { fd: 8, file: 9, cloexec: true },
          { fd: 9, file: 11, cloexec: false },
          { fd: 10, file: 12, cloexec: false },
          { fd: 11, file: 13, cloexec: false },
          { fd: 12, file: 14, cloexec: false },
          { fd: 13, file: 15, cloexec: false },
          { fd: 1000, file: 2, cloexec: true },
        ],
      },
      {
        objref: 101,
        fds: [
          { fd: 0, file: 10, cloexec: false },
          { fd: 1, file: 1, cloexec: false },
          { fd: 5, file: 7, cloexec: false },
        ],
      },
      { objref: 102, fds: [] },
    ],
    processes: [
      {
        pid: 812,
        tgid: 812,
        comm: 'web',
        argv: ['/usr/bin/web', '--port', '8080', ''],
        cwd: '/srv',
        table: 100,
      },
      { pid: 813, tgid: 812, comm: 'web-worker', argv: [], cwd: '/srv', table: 100 },
      { pid: 900, tgid: 900, comm: 'sidecar', argv: ['sidecar', 'naïve ☃ 😀'], cwd: '/', table: 101 },
      { pid: 901, tgid: 901, comm: 'idle', argv: ['sleep', 'inf'], cwd: '/', table: 102 },
    ],
  };
}

const u32 = fc.nat({ max: 0xffff_ffff });
const safe = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const i32 = fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff });
const text = fc.string({ unit: 'grapheme', maxLength: 12 });
// What capture can write: no NUL, and an absolute path normalized (the reader refuses
// `//`, `.`, `..` and a trailing `/` in the paths replay opens).
const path = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 40 })
  .filter((s) => !s.includes('\0') && !(s.startsWith('/') && unnormalized(s) !== undefined));

/** Allowed flags: anything but the creation-only bits and O_CLOEXEC. */
const flags = u32.map((f) => (f & ~(O.CREAT | O.EXCL | O.NOCTTY | O.TRUNC | O.CLOEXEC)) >>> 0);

/** FileData of every type; epoll targets name files by index, resolved to objrefs later. */
function fileData(nfiles: number): fc.Arbitrary<FileData> {
  const target = fc.record(
    {
      tfd: i32,
      events: u32,
      data: u64,
      ino: safe,
      file: fc.option(fc.nat({ max: nfiles - 1 }), { nil: undefined }),
    },
    { requiredKeys: ['tfd', 'events', 'data', 'ino'] },
  );
  const byType: { [T in FileType]: fc.Arbitrary<Extract<FileData, { type: T }>> } = {
    regular: fc.record({ type: fc.constant('regular'), size: safe }),
    directory: fc.constant({ type: 'directory' }),
    fifo: fc.constant({ type: 'fifo' }),
    pipe: fc.record(
      {
        type: fc.constant('pipe'),
        pipeIno: safe,
        end: fc.constantFrom('read', 'write'),
        bufferedBytes: u32,
        buffered: fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)),
      },
      { requiredKeys: ['type', 'pipeIno', 'end', 'bufferedBytes'] },
    ),
    socket: fc.record(
      {
        type: fc.constant('socket'),
        family: fc.nat({ max: 0xffff }),
        sockType: u32,
        protocol: u32,
        state: text,
        sockIno: safe,
        peerIno: safe,
        localAddress: text,
        listen: fc.record({
          address: fc.uint8Array({ maxLength: 28 }).map((a) => Buffer.from(a)),
          backlog: u32,
          reuseAddr: fc.boolean(),
          reusePort: fc.boolean(),
          keepAlive: fc.boolean(),
          v6Only: fc.boolean(),
          noDelay: fc.boolean(),
        }),
      },
      { requiredKeys: ['type', 'family', 'sockType', 'protocol', 'state', 'sockIno'] },
    ),
    eventfd: fc.record({ type: fc.constant('eventfd'), count: u64, semaphore: fc.boolean() }),
    eventpoll: fc.record({ type: fc.constant('eventpoll'), targets: fc.array(target, { maxLength: 4 }) }),
    tty: fc.record({ type: fc.constant('tty'), index: u32, master: fc.boolean() }),
    memfd: fc.record(
      {
        type: fc.constant('memfd'),
        name: text,
        size: safe,
        seals: u32,
        contents: fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)),
      },
      { requiredKeys: ['type', 'name', 'size', 'seals'] },
    ),
    signalfd: fc.record({ type: fc.constant('signalfd'), sigmask: u64 }),
    timerfd: fc.record({
      type: fc.constant('timerfd'),
      clockid: i32,
      ticks: u64,
      settimeFlags: u32,
      valueNs: u64,
      intervalNs: u64,
    }),
    inotify: fc.record({
      type: fc.constant('inotify'),
      watches: fc.array(fc.record({ wd: i32, ino: safe, sdev: safe, mask: u32, ignoredMask: u32 }), {
        maxLength: 3,
      }),
    }),
    anon: fc.record({ type: fc.constant('anon'), name: text }),
  };
  return fc.oneof(...Object.values(byType));
}

/** fast-check may build null-prototype objects; the decoder builds plain ones (toStrictEqual tells them apart). */
function plain<T>(v: T): T {
  if (Array.isArray(v)) return v.map(plain) as T;
  if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) return v;
  const entries = Object.entries(v).filter(([, x]) => x !== undefined);
  return Object.fromEntries(entries.map(([k, x]) => [k, plain(x)])) as T;
}

/** Random valid checkpoints: objrefs are unique and scattered, every reference resolves. */
export function arbCheckpoint(): fc.Arbitrary<Checkpoint> {
  return fc
    .record({ nfiles: fc.integer({ min: 1, max: 6 }), ntables: fc.integer({ min: 1, max: 3 }) })
    .chain(({ nfiles, ntables }) =>
      fc.record({
        objrefs: fc.uniqueArray(fc.integer({ min: 1, max: 0x7fff_ffff }), {
          minLength: nfiles + ntables,
          maxLength: nfiles + ntables,
        }),
        header: fc.record({ node: text, source: text, time: fc.maxSafeInteger(), kernel: text, tool: text }),
        files: fc.array(
          fc.record(
            {
              data: fileData(nfiles),
              flags,
              pos: safe,
              path,
              mntId: i32,
              dev: safe,
              ino: safe,
              mode: u32,
              ignored: fc.record({ reason: fc.constantFrom('type' as const, 'fd' as const) }),
            },
            { requiredKeys: ['data', 'flags', 'pos', 'path', 'mntId', 'dev', 'ino', 'mode'] },
          ),
          { minLength: nfiles, maxLength: nfiles },
        ),
        tables: fc.array(
          fc.uniqueArray(
            fc.record({
              fd: fc.nat({ max: 1 << 20 }),
              file: fc.nat({ max: nfiles - 1 }),
              cloexec: fc.boolean(),
            }),
            {
              selector: (x) => x.fd,
              maxLength: 5,
            },
          ),
          { minLength: ntables, maxLength: ntables },
        ),
        processes: fc.uniqueArray(
          fc.record({
            pid: fc.integer({ min: 1, max: 0x7fff_ffff }),
            tgid: fc.integer({ min: 1, max: 0x7fff_ffff }),
            comm: text,
            argv: fc.array(text, { maxLength: 4 }),
            cwd: path,
            table: fc.nat({ max: ntables - 1 }),
          }),
          { selector: (p) => p.pid, maxLength: 4 },
        ),
      }),
    )
    .map(({ objrefs, header, files, tables, processes }) => {
      const fileRef = (i: number): number => objrefs[i]!;
      const tableRef = (i: number): number => objrefs[files.length + i]!;
      return plain({
        header,
        files: files.map(({ data, ...rest }, i): FileRecord => {
          const resolved: FileData =
            data.type === 'eventpoll'
              ? {
                  type: 'eventpoll',
                  targets: data.targets.map((t) =>
                    t.file === undefined ? t : { ...t, file: fileRef(t.file) },
                  ),
                }
              : data;
          return { objref: fileRef(i), type: data.type, data: resolved, ...rest };
        }),
        tables: tables.map((fds, i) => ({
          objref: tableRef(i),
          fds: fds.map((fd) => ({ ...fd, file: fileRef(fd.file) })),
        })),
        processes: processes.map((p) => ({ ...p, table: tableRef(p.table) })),
      });
    });
}

/** A regular file's record, inode = objref, on mount 1 of device 1. */
export function regularFile(objref: number, path: string, flags = 0): FileRecord {
  return {
    objref,
    type: 'regular',
    flags,
    pos: 0,
    path,
    mntId: 1,
    dev: 1,
    ino: objref,
    mode: 0o100644,
    data: { type: 'regular', size: 0 },
  };
}

/**
 * An image with one byte of `needle` (a string its records hold; its last
 * occurrence, inside the records) changed, and its trailer recomputed: a well-formed image, just
 * not the one written — only a digest kept elsewhere (status.image.sha256) tells.
 */
export function tamperedImage(image: Buffer, needle: string): Buffer {
  const out = Buffer.from(image);
  const at = out.lastIndexOf(needle, undefined, 'latin1');
  if (at < 0) throw new Error(`tamperedImage: ${JSON.stringify(needle)} is not in the image`);
  out[at] = out[at]! ^ 0x01;
  return resealed(out);
}

/** `image` with its trailer recomputed: the SHA-256 (its last 32 bytes) of everything before the trailer record. */
export function resealed(image: Buffer): Buffer {
  const out = Buffer.from(image);
  createHash('sha256')
    .update(out.subarray(0, out.length - 40))
    .digest()
    .copy(out, out.length - 32);
  return out;
}

/**
 * `image` with the saved flags of the file record with objref `objref` set to `flags`,
 * resealed: a checksummed image with one field no capture writes (O_CREAT, say).
 */
export function withFileFlags(image: Buffer, objref: number, flags: number): Buffer {
  const out = Buffer.from(image);
  for (let at = 12; at < out.length; at += 8 + out.readUInt32LE(at + 4)) {
    // A file record (type 2): objref i32, type id u16, then flags u32.
    if (out.readUInt32LE(at) === 2 && out.readInt32LE(at + 8) === objref) {
      out.writeUInt32LE(flags, at + 14);
      return resealed(out);
    }
  }
  throw new Error(`withFileFlags: no file record with objref ${objref}`);
}
