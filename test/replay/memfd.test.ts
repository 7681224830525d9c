/**
 * memfd round trips on a real process (test/fixtures/fdproc.py `memfds`: a
 * sealed memfd with a hole and an offset, an unsealable one in append and
 * non-blocking mode, an empty cloexec one, a dup): the restored program sees
 * the same names, bytes, sizes, offsets, flags and seals, and the dup shares
 * its open file again.
 */
import { describe, expect, test } from '@jest/globals';
import { capture } from '../../src/agent/capture/index.js';
import { MEMFD_CONTENTS_LIMIT } from '../../src/agent/filetypes/memfd.js';
import { diffCheckpoints } from '../../src/agent/image/index.js';
import { restore } from '../../src/agent/replay/index.js';
import { fdOf } from '../support/fixture.js';
import { useFixtures } from '../support/use-fixtures.js';
import { tableView } from './normalize.js';
import {
  checkpointOf,
  fileAtFd as fileAt,
  fileOf,
  runRestoredPython,
  trackRestored,
  restoreAndRecapture,
} from './support.js';

const started = trackRestored();
const fixture = useFixtures();

describe.each([true, false])('memfd (batched: %s)', (batch) => {
  test('capture → restore → capture shows the same table, contents and seals', async () => {
    const fx = await fixture('memfds');
    const before = capture([fx.pid]);
    expect(before.problems).toEqual([]);
    const sealed = fileAt(before.checkpoint, fx.pid, fdOf(fx, 'sealed'));
    // F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE; 4800 bytes written, then a hole up to 8192.
    expect(sealed.data).toMatchObject({ type: 'memfd', name: 'fdckpt-sealed', size: 8192, seals: 0b1110 });
    expect(fileAt(before.checkpoint, fx.pid, fdOf(fx, 'plain')).data).toMatchObject({ seals: 1 });

    const { pid, after } = await restoreAndRecapture(before.checkpoint, started, batch);
    expect(diffCheckpoints(before.checkpoint, after.checkpoint)).toEqual([]);
    // tableView keeps each file's type data: name, size, seals and the contents themselves.
    expect(tableView(after.checkpoint, pid)).toEqual(tableView(before.checkpoint, fx.pid));
  });
});

test('the restored program reads the bytes at the saved offset and cannot break the seals', async () => {
  const fx = await fixture('memfds');
  const cp = capture([fx.pid]).checkpoint;
  const script = [
    'import os, sys, json, fcntl',
    `sealed, plain, dup = ${fdOf(fx, 'sealed')}, ${fdOf(fx, 'plain')}, ${fdOf(fx, 'sealed_dup')}`,
    'chunk = os.read(sealed, 9).decode()',
    'shared = os.lseek(dup, 0, os.SEEK_CUR)',
    'try:',
    "    os.pwrite(sealed, b'x', 0); writable = True",
    'except PermissionError:',
    '    writable = False',
    "os.write(plain, b'!')",
    'size = os.fstat(plain).st_size',
    'last = os.pread(plain, 2, 255).hex()',
    "json.dump({'chunk': chunk, 'shared': shared, 'writable': writable, 'size': size, 'last': last}, open(sys.argv[1], 'w'))",
  ];
  // Offset 123 in "sealed contents\n" repeated: 123 % 16 = 11 → "ents\nseal".
  expect(await runRestoredPython(cp, script, fx.dir, started)).toEqual({
    chunk: 'ents\nseal',
    shared: 132,
    writable: false,
    size: 257, // O_APPEND came back: the write went to the end
    last: 'ff21',
  });
});

test('a memfd whose contents were not captured is refused before the target is touched', async () => {
  const big = fileOf('memfd', '/memfd:huge (deleted)', 2, 0, {
    type: 'memfd',
    name: 'huge',
    size: MEMFD_CONTENTS_LIMIT + 1,
    seals: 0,
  });
  await expect(restore(checkpointOf([{ fd: 3, file: big }]), ['true'], { stdio: 'ignore' })).rejects.toThrow(
    `fd 3 (/memfd:huge (deleted)): memfd of ${MEMFD_CONTENTS_LIMIT + 1} bytes: contents above ${MEMFD_CONTENTS_LIMIT} bytes are not captured (policy skip or devnull can replace it)`,
  );
});
