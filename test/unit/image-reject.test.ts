/**
 * The strict reader: every malformed image is an ImageFormatError naming the
 * record and byte offset. Each case breaks one rule of a small valid image.
 */
import { describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  decodeCheckpoint,
  encodeCheckpoint,
  ImageFormatError,
  readImageFile,
  toInspectJson,
} from '../../src/agent/image/index.js';
import { NFDS_MAX, O, PATH_MAX } from '../../src/agent/model.js';
import {
  fdRec,
  fileRec,
  headerRec,
  image,
  nameRec,
  offsetOf,
  preamble,
  processRec,
  rec,
  tableRec,
  trailer,
  validRecords,
} from '../support/image-builder.js';
import { richCheckpoint } from '../support/image-fixtures.js';

function errorOf(buf: Buffer): ImageFormatError {
  try {
    decodeCheckpoint(buf);
  } catch (err) {
    if (err instanceof ImageFormatError) return err;
    throw err;
  }
  throw new Error('the image was accepted');
}

/** The message expected for a problem in record `index` (0-based) of image(records). */
function at(records: Buffer[], index: number, kind: string, detail: string): string {
  return `image: record ${index + 1} (${kind}) at byte ${offsetOf(records, index)}: ${detail}`;
}

/** validRecords() with record `index` replaced (or removed, or more inserted). */
function withRecords(index: number, remove: number, ...insert: Buffer[]): Buffer[] {
  const r = validRecords();
  r.splice(index, remove, ...insert);
  return r;
}

test('the small valid image is accepted', () => {
  const cp = decodeCheckpoint(image(validRecords()));
  expect(cp.tables).toEqual([{ objref: 2, fds: [{ fd: 0, file: 1, cloexec: false }] }]);
});

describe('older versions', () => {
  test('version 1 (no binding, no exe) and version 2 (no exe) images are read', () => {
    for (const version of [1, 2]) {
      const cp = decodeCheckpoint(image(validRecords(version), preamble(version)));
      expect(cp.header.binding).toBeUndefined();
      expect(cp.processes).toEqual([{ pid: 10, tgid: 10, comm: 'c', argv: [], cwd: '/', table: 2 }]);
      // Written again, it is a version 3 image that reads back the same.
      expect(decodeCheckpoint(encodeCheckpoint(cp))).toEqual(cp);
    }
  });

  test('a version 3 process record has its exe', () => {
    const r = validRecords();
    r[5] = processRec(10, 2, 3, '/usr/bin/c');
    expect(decodeCheckpoint(image(r)).processes[0]!.exe).toBe('/usr/bin/c');
  });

  test('a version 3 process record read as version 2 has unused bytes', () => {
    expect(() => decodeCheckpoint(image(validRecords(3), preamble(2)))).toThrow(ImageFormatError);
  });

  test('an owner record in a version 1 or 2 image is refused', () => {
    const owner = rec('owner', (w) => {
      w.u8('kind', 1);
      w.i32('id', 10);
      w.i32('signal', 0);
    });
    for (const version of [1, 2]) {
      const r = validRecords(version);
      r.splice(3, 0, owner);
      expect(errorOf(image(r, preamble(version))).message).toBe(
        at(r, 3, 'owner', `record type 7 (owner) in a version ${version} image`),
      );
    }
  });
});

describe('preamble and framing', () => {
  test('bad magic', () => {
    const buf = image(validRecords(), preamble(1, Buffer.from('NOTFDCKP')));
    expect(errorOf(buf).message).toBe('image: at byte 0: bad magic 4e4f544644434b50: not an fdckpt image');
  });

  test('a short file that is not an image', () => {
    expect(errorOf(Buffer.from('{}')).message).toBe('image: at byte 0: bad magic: not an fdckpt image');
  });

  test('a file shorter than the preamble', () => {
    expect(errorOf(Buffer.from('FDCKPT')).message).toBe(
      'image: at byte 0: truncated: 6 bytes, shorter than the 12-byte preamble',
    );
  });

  test('unknown version (0, 5)', () => {
    expect(errorOf(image(validRecords(), preamble(0))).message).toBe(
      'image: at byte 8: unknown format version 0 (this reader knows versions 1, 2, 3, 4)',
    );
    expect(errorOf(image(validRecords(), preamble(5))).message).toBe(
      'image: at byte 8: unknown format version 5 (this reader knows versions 1, 2, 3, 4)',
    );
  });

  test('unknown record type', () => {
    const r = withRecords(
      1,
      0,
      rec(77, () => {}),
    );
    expect(errorOf(image(r)).message).toBe(at(r, 1, 'type 77', 'unknown record type 77'));
  });

  test('a length running past the end allocates nothing and is an error', () => {
    const r = validRecords();
    const buf = image(r);
    buf.writeUInt32LE(0xffff_ffff, offsetOf(r, 1) + 4);
    const left = buf.length - offsetOf(r, 1) - 8;
    expect(errorOf(buf).message).toBe(
      at(r, 1, 'file', `truncated: length 4294967295 runs past the end of the image (${left} bytes left)`),
    );
  });

  test('a length too short for the fields', () => {
    const r = withRecords(4, 1, fdRec(0, 1).subarray(0, 8 + 6));
    r[4]!.writeUInt32LE(6, 4);
    expect(errorOf(image(r)).message).toBe(
      at(r, 4, 'fd', 'field file: needs 4 bytes, only 2 left in the record'),
    );
  });

  test('a length longer than the fields', () => {
    const fd = Buffer.concat([fdRec(0, 1), Buffer.from([0, 0])]);
    fd.writeUInt32LE(11, 4);
    const r = withRecords(4, 1, fd);
    expect(errorOf(image(r)).message).toBe(at(r, 4, 'fd', '2 unused bytes at the end of the record'));
  });

  test('truncated inside a record header', () => {
    const buf = image(validRecords()).subarray(0, offsetOf(validRecords(), 2) + 3);
    expect(errorOf(buf).message).toBe(
      `image: record 3 at byte ${offsetOf(validRecords(), 2)}: truncated record header: 3 bytes left, a header is 8`,
    );
  });

  test('truncated inside a payload', () => {
    const r = validRecords();
    const buf = image(r).subarray(0, offsetOf(r, 1) + 10);
    expect(errorOf(buf).message).toBe(
      at(r, 1, 'file', 'truncated: length 51 runs past the end of the image (2 bytes left)'),
    );
  });

  test('no trailer', () => {
    const r = validRecords();
    const buf = Buffer.concat([preamble(), ...r]);
    expect(errorOf(buf).message).toBe(
      `image: at byte ${buf.length}: truncated: the image ends after 6 records, without a trailer`,
    );
  });

  test('trailing garbage', () => {
    const buf = Buffer.concat([image(validRecords()), Buffer.from('xyz')]);
    expect(errorOf(buf).message).toBe(
      `image: at byte ${buf.length - 3}: 3 bytes of trailing garbage after the trailer`,
    );
  });

  test('bad checksum', () => {
    const r = validRecords();
    const body = Buffer.concat([preamble(), ...r]);
    const buf = Buffer.concat([body, trailer(body, Buffer.alloc(32, 0xab))]);
    expect(errorOf(buf).message).toMatch(
      new RegExp(
        `^image: record 7 \\(trailer\\) at byte ${body.length}: bad checksum: the trailer says (ab){32}, the image hashes to [0-9a-f]{64}$`,
      ),
    );
  });

  test('a flipped byte inside a string is caught by the checksum', () => {
    const buf = image(validRecords());
    const at = offsetOf(validRecords(), 0) + 12; // the header's node name
    buf[at] = buf[at]! ^ 0x01;
    expect(errorOf(buf).message).toMatch(/record 7 \(trailer\) at byte \d+: bad checksum/);
  });

  test('a trailer of the wrong length', () => {
    const r = validRecords();
    const body = Buffer.concat([preamble(), ...r]);
    const buf = Buffer.concat([body, rec('trailer', (w) => w.raw(Buffer.alloc(31)))]);
    expect(errorOf(buf).message).toBe(
      `image: record 7 (trailer) at byte ${body.length}: trailer length 31, a SHA-256 digest is 32`,
    );
  });
});

describe('record order', () => {
  test('the header must come first', () => {
    const r = withRecords(0, 1);
    expect(errorOf(image(r)).message).toBe(
      at(r, 0, 'file', 'the first record must be the image header, not file'),
    );
  });

  test('a second header', () => {
    const r = withRecords(1, 0, headerRec());
    expect(errorOf(image(r)).message).toBe(at(r, 1, 'header', 'a second image header'));
  });

  test('sections in order: a file after the tables', () => {
    const r = withRecords(5, 0, fileRec({ objref: 3 }), nameRec());
    expect(errorOf(image(r)).message).toBe(
      at(
        r,
        5,
        'file',
        'a file record after the file tables: records go header, files, file tables, processes, trailer',
      ),
    );
  });

  test('sections in order: a table after the processes', () => {
    const r = withRecords(6, 0, tableRec(3, 0));
    expect(errorOf(image(r)).message).toBe(
      at(
        r,
        6,
        'table',
        'a table record after the processes: records go header, files, file tables, processes, trailer',
      ),
    );
  });

  test('a file without its name record', () => {
    const r = withRecords(2, 1);
    expect(errorOf(image(r)).message).toBe(
      at(r, 2, 'table', 'file objref 1 is not followed by its name record'),
    );
  });

  test('a name record that follows no file', () => {
    const r = withRecords(3, 0, nameRec());
    expect(errorOf(image(r)).message).toBe(
      at(r, 3, 'name', 'a name record that does not follow a file record'),
    );
  });

  test('an fd record outside a table', () => {
    const r = withRecords(3, 0, fdRec(0, 1));
    expect(errorOf(image(r)).message).toBe(at(r, 3, 'fd', 'an fd record outside a file table'));
  });

  test('nfds larger than the fd records that follow', () => {
    const r = withRecords(3, 1, tableRec(2, 2));
    expect(errorOf(image(r)).message).toBe(
      at(r, 5, 'process', 'file table objref 2 declares nfds 2 but only 1 fd records follow'),
    );
  });

  test('nfds smaller than the fd records that follow', () => {
    const r = withRecords(5, 0, fdRec(1, 1));
    expect(errorOf(image(r)).message).toBe(
      at(r, 5, 'fd', 'file table objref 2 declares nfds 1 but more fd records follow'),
    );
  });

  test('fd records still expected at the trailer', () => {
    const r = withRecords(5, 1, tableRec(3, 1));
    expect(errorOf(image(r)).message).toBe(
      at(r, 6, 'trailer', 'file table objref 3 declares nfds 1 but only 0 fd records follow'),
    );
  });

  test(`nfds over NFDS_MAX`, () => {
    const r = withRecords(3, 1, tableRec(2, NFDS_MAX + 1));
    expect(errorOf(image(r)).message).toBe(
      at(r, 3, 'table', `nfds ${NFDS_MAX + 1} is over NFDS_MAX (${NFDS_MAX})`),
    );
  });
});

describe('objrefs', () => {
  test('an fd objref of 0', () => {
    const r = withRecords(4, 1, fdRec(3, 0));
    expect(errorOf(image(r)).message).toBe(at(r, 4, 'fd', 'fd 3: objref 0 is not positive'));
  });

  test('a negative file objref', () => {
    const r = withRecords(1, 1, fileRec({ objref: -5 }));
    expect(errorOf(image(r)).message).toBe(at(r, 1, 'file', 'objref -5 is not positive'));
  });

  test('an fd naming an undefined file', () => {
    const r = withRecords(4, 1, fdRec(0, 9));
    expect(errorOf(image(r)).message).toBe(at(r, 4, 'fd', 'fd 0: objref 9 names no file defined before it'));
  });

  test('an fd naming a file table', () => {
    const r = withRecords(4, 1, fdRec(0, 2));
    expect(errorOf(image(r)).message).toBe(at(r, 4, 'fd', 'fd 0: objref 2 is a file table, not a file'));
  });

  test('a process naming an undefined table', () => {
    const r = withRecords(5, 1, processRec(10, 7));
    expect(errorOf(image(r)).message).toBe(
      at(r, 5, 'process', 'table objref 7 names no file table defined before it'),
    );
  });

  test('a process naming a file', () => {
    const r = withRecords(5, 1, processRec(10, 1));
    expect(errorOf(image(r)).message).toBe(at(r, 5, 'process', 'table objref 1 is a file, not a file table'));
  });

  test('a duplicate objref', () => {
    const r = withRecords(3, 1, tableRec(1, 1));
    expect(errorOf(image(r)).message).toBe(at(r, 3, 'table', 'duplicate objref 1 (already a file)'));
  });

  test('an epoll target naming no file', () => {
    const epoll = fileRec({
      objref: 5,
      typeId: 7,
      data: (w) => {
        w.u32('targets', 1);
        w.i32('tfd', 3);
        w.u32('events', 1);
        w.u64('data', 0n);
        w.u64n('ino', 1);
        w.u8('file present', 1);
        w.i32('file', 6);
      },
    });
    const r = withRecords(3, 0, epoll, nameRec('anon_inode:[eventpoll]'));
    expect(errorOf(image(r)).message).toBe(
      at(r, 3, 'file', 'epoll objref 5: target 0 names objref 6, which is not a file of the image'),
    );
  });

  test('an epoll target count larger than the record allocates nothing and is an error', () => {
    const epoll = fileRec({ objref: 5, typeId: 7, data: (w) => w.u32('targets', 0xffff_ffff) });
    const r = withRecords(3, 0, epoll, nameRec());
    expect(errorOf(image(r)).message).toBe(
      at(r, 3, 'file', 'field targets: count 4294967295 needs at least 107374182375 bytes, only 0 left'),
    );
  });
});

describe('fields', () => {
  test('a negative fd', () => {
    const r = withRecords(4, 1, fdRec(-1, 1));
    expect(errorOf(image(r)).message).toBe(at(r, 4, 'fd', 'fd -1 is negative'));
  });

  test('a duplicate fd in one table', () => {
    const r = withRecords(3, 2, tableRec(2, 2), fdRec(4, 1), fdRec(4, 1));
    expect(errorOf(image(r)).message).toBe(at(r, 5, 'fd', 'duplicate fd 4 in file table objref 2'));
  });

  test('an invalid cloexec byte', () => {
    const r = withRecords(4, 1, fdRec(0, 1, 2));
    expect(errorOf(image(r)).message).toBe(at(r, 4, 'fd', 'field cloexec: invalid boolean byte 2'));
  });

  test('a path over PATH_MAX', () => {
    const r = withRecords(2, 1, nameRec('/' + 'a'.repeat(PATH_MAX - 1)));
    expect(errorOf(image(r)).message).toBe(
      at(r, 2, 'name', `path is ${PATH_MAX} bytes, over PATH_MAX (4096 with its NUL)`),
    );
  });

  test('an empty path', () => {
    const r = withRecords(2, 1, nameRec(''));
    expect(errorOf(image(r)).message).toBe(at(r, 2, 'name', 'file objref 1 has an empty path'));
  });

  test('a path that is not UTF-8', () => {
    const bad = rec('name', (w) => {
      w.u32('path', 2);
      w.raw(Buffer.from([0xc3, 0x28]));
    });
    const r = withRecords(2, 1, bad);
    expect(errorOf(image(r)).message).toBe(at(r, 2, 'name', 'field path: is not valid UTF-8'));
  });

  test.each([
    [O.CREAT, 'O_CREAT'],
    [O.EXCL, 'O_EXCL'],
    [O.NOCTTY, 'O_NOCTTY'],
    [O.TRUNC | O.CREAT, 'O_CREAT|O_TRUNC'],
  ])('saved flags with creation-only %o', (flag, words) => {
    const flags = O.RDWR | flag;
    const r = withRecords(1, 1, fileRec({ flags }));
    expect(errorOf(image(r)).message).toBe(
      at(r, 1, 'file', `flags 0o${flags.toString(8)} contain creation-only ${words}`),
    );
  });

  test('saved flags with O_CLOEXEC', () => {
    const r = withRecords(1, 1, fileRec({ flags: O.CLOEXEC }));
    expect(errorOf(image(r)).message).toBe(
      at(r, 1, 'file', 'flags 0o2000000 contain O_CLOEXEC, which belongs to each fd record'),
    );
  });

  test('an unknown file type id', () => {
    const r = withRecords(1, 1, fileRec({ typeId: 999 }));
    expect(errorOf(image(r)).message).toBe(at(r, 1, 'file', 'unknown file type id 999'));
  });

  test('an invalid ignore mark', () => {
    const r = withRecords(1, 1, fileRec({ ignored: 3 }));
    expect(errorOf(image(r)).message).toBe(at(r, 1, 'file', 'field ignored: invalid ignore mark 3'));
  });

  test('an invalid pipe end', () => {
    const pipe = fileRec({
      typeId: 4,
      data: (w) => {
        w.u64n('pipeIno', 1);
        w.u8('end', 2);
        w.u32('bufferedBytes', 0);
        w.u8('buffered present', 0);
      },
    });
    const r = withRecords(1, 1, pipe);
    expect(errorOf(image(r)).message).toBe(
      at(r, 1, 'file', 'field end: invalid pipe end 2 (0 read, 1 write)'),
    );
  });

  test('a u64 number beyond 2^53-1', () => {
    const big = fileRec({ data: (w) => w.u64('size', 1n << 60n) });
    const r = withRecords(1, 1, big);
    expect(errorOf(image(r)).message).toBe(
      at(r, 1, 'file', 'field size: 1152921504606846976 exceeds 2^53-1'),
    );
  });

  test('a non-positive or duplicate pid', () => {
    const r0 = withRecords(5, 1, processRec(0, 2));
    expect(errorOf(image(r0)).message).toBe(at(r0, 5, 'process', 'pid 0 is not positive'));
    const r1 = withRecords(6, 0, processRec(10, 2));
    expect(errorOf(image(r1)).message).toBe(at(r1, 6, 'process', 'duplicate pid 10'));
  });
});

describe('the writer refuses what the reader would reject', () => {
  test('an fd naming an undefined file, with the message the reader would give', () => {
    const cp = richCheckpoint();
    cp.tables[1]!.fds[0]!.file = 4242;
    expect(() => encodeCheckpoint(cp)).toThrow(
      /^image: record \d+ \(fd\) at byte \d+: fd 0: objref 4242 names no file/,
    );
  });

  test('creation-only flags', () => {
    const cp = richCheckpoint();
    cp.files[0]!.flags |= O.TRUNC;
    expect(() => encodeCheckpoint(cp)).toThrow(
      /record 2 \(file\) at byte 82: flags 0o3001 contain creation-only O_TRUNC$/,
    );
  });

  test('a number that does not fit its field', () => {
    const cp = richCheckpoint();
    cp.files[0]!.pos = -1;
    expect(() => encodeCheckpoint(cp)).toThrow(
      /record 2 \(file\) at byte 82: field pos: -1 is not a u64 safe integer$/,
    );
  });

  test('data of another type than the file', () => {
    const cp = richCheckpoint();
    cp.files[0]!.type = 'fifo';
    expect(() => encodeCheckpoint(cp)).toThrow(/field|data type regular does not match file type fifo$/);
  });

  test('a string with a lone surrogate', () => {
    const cp = richCheckpoint();
    cp.processes[0]!.argv = ['\ud800'];
    expect(() => encodeCheckpoint(cp)).toThrow(/field argv\[0\]: contains a lone UTF-16 surrogate/);
  });
});

test('inspect reports an older image by its own format version', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'fdckpt-v2-')), 'v2.fdimg');
  writeFileSync(path, image(validRecords(2), preamble(2)));
  const { checkpoint, version } = await readImageFile(path);
  expect(version).toBe(2);
  expect(toInspectJson(checkpoint, version).version).toBe(2);
  rmSync(dirname(path), { recursive: true, force: true });
});
