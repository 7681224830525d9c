import { afterEach, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeCheckpoint, writeImage } from '../../src/agent/image/index.js';
import { O } from '../../src/agent/model.js';
import { main } from '../../src/cli/main.js';
import { withFileFlags } from '../support/image-fixtures.js';
import { checkpointOf, fileOf } from './support.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmpdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'replay-cli-'));
  dirs.push(d);
  return d;
}

/** Runs the CLI in-process and returns its exit code and what it wrote to stderr. */
async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = (chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  };
  try {
    return { code: await main(args), stderr };
  } finally {
    process.stderr.write = write;
  }
}

describe('fdckpt restore', () => {
  test('runs CMD with the table and exits with its status; CMD sees the restored fd', async () => {
    const d = tmpdir();
    const data = path.join(d, 'data');
    fs.writeFileSync(data, 'skip-me:payload\n');
    const image = path.join(d, 'img.fdimg');
    await writeImage(
      image,
      checkpointOf([{ fd: 5, file: fileOf('regular', data, O.RDONLY, 8, { type: 'regular', size: 16 }) }]),
    );
    // The shell reads from fd 5 at the saved offset; its exit status says whether it saw "payload".
    const script = 'read line <&5; [ "$line" = payload ] && exit 7; exit 1';
    expect(await cli(['restore', '--image', image, '--', 'sh', '-c', script])).toEqual({
      code: 7,
      stderr: '',
    });
    expect(await cli(['restore', '--no-batch', '--image', image, '--', 'sh', '-c', script])).toEqual({
      code: 7,
      stderr: '',
    });
  });

  test('a restore the plan refuses is one line naming the fd, exit 3; usage errors exit 2', async () => {
    const d = tmpdir();
    const gone = path.join(d, 'gone.log');
    const image = path.join(d, 'img.fdimg');
    await writeImage(
      image,
      checkpointOf([{ fd: 7, file: fileOf('regular', gone, O.WRONLY, 0, { type: 'regular', size: 0 }) }]),
    );
    expect(await cli(['restore', '--image', image, '--', 'true'])).toEqual({
      code: 3,
      stderr: `fdckpt restore: fd 7 (${gone}): ENOENT\n`,
    });
    const policy = path.join(d, 'policy.yaml');
    fs.writeFileSync(policy, 'rules:\n  - path: /nowhere/**\n    action: sideways\n');
    expect(await cli(['restore', '--image', image, '--policy', policy, '--', 'true'])).toEqual({
      code: 1,
      stderr:
        'fdckpt restore: policy rule 1: action must be one of fail, skip, devnull, remap, inherit, got "sideways"\n',
    });
    fs.writeFileSync(policy, `rules:\n  - path: ${d}/*.log\n    action: skip\n`);
    expect(await cli(['restore', '--image', image, '--policy', policy, '--', 'sh', '-c', 'exit 3'])).toEqual({
      code: 3,
      stderr: '',
    });
    expect(await cli(['restore', '--dry-run', '--image', image])).toEqual({
      code: 3,
      stderr: `fdckpt restore: fd 7 (${gone}): ENOENT\n`,
    });
    fs.writeFileSync(gone, '');
    expect(await cli(['restore', '--dry-run', '--image', image])).toEqual({ code: 0, stderr: '' });
    expect((await cli(['restore', '--image', image, '--bogus', 'x'])).code).toBe(2);
  });

  test("--pid decodes only that process's files: a field no capture writes, in a file of another process, does not stop it", async () => {
    const d = tmpdir();
    const data = path.join(d, 'data');
    fs.writeFileSync(data, 'skip-me:payload\n');
    const mine = fileOf('regular', data, O.RDONLY, 8, { type: 'regular', size: 16 });
    const theirs = fileOf('regular', data, O.RDONLY, 0, { type: 'regular', size: 16 });
    const one = checkpointOf([{ fd: 5, file: mine }]);
    const cp = {
      ...one,
      processes: [...one.processes, { pid: 2, tgid: 2, comm: 'other', argv: [], cwd: '/', table: 2000 }],
      tables: [...one.tables, { objref: 2000, fds: [{ fd: 6, file: theirs.objref, cloexec: false }] }],
      files: [mine, theirs],
    };
    const image = path.join(d, 'img.fdimg');
    // O_CREAT on process 2's file: a full read (inspect) refuses the image there.
    fs.writeFileSync(image, withFileFlags(encodeCheckpoint(cp), theirs.objref, O.RDONLY | O.CREAT));
    const inspect = await cli(['inspect', image]);
    expect(inspect.code).toBe(1);
    expect(inspect.stderr).toMatch(/record \d+ \(file\).*creation-only O_CREAT/);
    const script = 'read line <&5; [ "$line" = payload ] && exit 7; exit 1';
    expect(await cli(['restore', '--image', image, '--pid', '1', '--', 'sh', '-c', script])).toEqual({
      code: 7,
      stderr: '',
    });
    const refused = await cli(['restore', '--image', image, '--pid', '2', '--', 'true']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/record \d+ \(file\).*creation-only O_CREAT/);
  });
});
