/** The CLI round trip: capture → image → restore → capture → image → `fdckpt diff`. */
import { describe, expect, test } from '@jest/globals';
import path from 'node:path';
import { capture } from '../../src/agent/capture/index.js';
import { writeImage } from '../../src/agent/image/index.js';
import { restore } from '../../src/agent/replay/index.js';
import { main } from '../../src/cli/main.js';
import { useFixtures } from '../support/use-fixtures.js';
import { waitAsleep, trackRestored } from './support.js';

const started = trackRestored();
const fixture = useFixtures();

async function cli(args: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  };
  try {
    return { code: await main(args), stdout };
  } finally {
    process.stdout.write = write;
  }
}

describe('fdckpt diff', () => {
  test('an image and the image of its restored copy do not differ; another process does', async () => {
    const fx = await fixture('files', 'pipes', 'fifo', 'eventfd', 'epoll');
    const other = await fixture('files');
    const a = path.join(fx.dir, 'a.fdimg');
    const b = path.join(fx.dir, 'b.fdimg');
    const c = path.join(fx.dir, 'c.fdimg');
    const before = capture([fx.pid]).checkpoint;
    await writeImage(a, before);
    const r = await restore(before, ['sleep', '60'], { stdio: 'ignore' });
    started.push(r);
    await waitAsleep(r.pid);
    await writeImage(b, capture([r.pid]).checkpoint);
    await writeImage(c, capture([other.pid]).checkpoint);

    expect(await cli(['diff', a, b])).toEqual({ code: 0, stdout: 'no differences\n' });
    const json = await cli(['diff', a, b, '--json']);
    expect(JSON.parse(json.stdout)).toEqual({ equal: true, differences: [] });

    const differ = await cli(['diff', a, c]);
    expect(differ.code).toBe(1);
    expect(differ.stdout).toMatch(/^\d+ differences?:\n/);
    expect((await cli(['diff', a, path.join(fx.dir, 'missing.fdimg')])).code).toBe(2);
  });
});
