/**
 * The transfer server reads an image's preamble and header itself (it refuses to serve
 * an image not bound to the requested Checkpoint) with the reader's version numbers
 * (image/format.ts). Here it serves the fixtures older releases wrote
 * (test/fixtures/images): it must agree with the reader on every one — serve what the
 * reader finds bound to that Checkpoint, refuse the rest — and refuse a version the
 * reader does not know.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readImageFile } from '../../src/agent/image/index.js';
import { FORMAT_VERSION, READABLE_VERSIONS } from '../../src/agent/image/format.js';
import { startTransferServer } from '../../src/agent/transfer/server.js';
import type {
  ExpectedBinding,
  RunningTransferServer,
  ServableImage,
} from '../../src/agent/transfer/server.js';
import { writeBoundImage } from '../support/bound-image.js';
import { tokenAuthorizer } from '../support/transfer.js';
import { FIXTURES, FIXTURE_DIR } from '../support/version-fixtures.js';

const TOKEN = 'k'.repeat(64);
let dir: string;
let server: RunningTransferServer;
/** What the lookup answers next: the image at a path, expected bound to a Checkpoint. */
let serving: ServableImage | undefined;
let errors: string[];

function servable(path: string, binding: ExpectedBinding): ServableImage {
  const bytes = readFileSync(path);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { path, size: bytes.length, sha256, binding };
}

/** GET the image the lookup answers with; the status, the body, and what the server logged. */
async function get(image: ServableImage): Promise<{ status: number; body: Buffer; logged: string[] }> {
  serving = image;
  errors = [];
  const { namespace, name } = image.binding!;
  const res = await fetch(`${server.url}/v1/images/${namespace}/${name}`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), logged: errors };
}

beforeAll(async () => {
  // The data directory (only a file inside it is served) holds copies of the fixtures.
  dir = mkdtempSync(join(tmpdir(), 'fdckpt-transfer-versions-'));
  for (const fx of FIXTURES) copyFileSync(join(FIXTURE_DIR, fx.file), join(dir, fx.file));
  server = await startTransferServer({
    host: '127.0.0.1',
    root: dir,
    authorize: tokenAuthorizer(TOKEN),
    lookup: () => Promise.resolve(serving),
    onError: (m) => errors.push(m),
  });
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(FIXTURES)('$file (format $version)', (fx) => {
  test('the server and the reader agree on its binding', async () => {
    const path = join(dir, fx.file);
    const { checkpoint, version } = await readImageFile(path);
    expect(version).toBe(fx.version);
    const bound = checkpoint.header.binding;
    expect(bound).toEqual(fx.binding);
    if (bound) {
      const ok = await get(servable(path, { namespace: bound.namespace, name: bound.name, uid: bound.uid }));
      expect(ok.status).toBe(200);
      expect(ok.body.equals(readFileSync(path))).toBe(true);
      const other = await get(
        servable(path, { namespace: bound.namespace, name: bound.name, uid: 'another-uid' }),
      );
      expect(other.status).toBe(409);
      expect(other.logged).toEqual([
        expect.stringContaining(
          `bound to checkpoint ${bound.namespace}/${bound.name} (uid ${bound.uid}), not ${bound.namespace}/${bound.name} (uid another-uid)`,
        ),
      ]);
    } else {
      const r = await get(servable(path, { namespace: 'default', name: 'c1', uid: 'some-uid' }));
      expect(r.status).toBe(409);
      const why =
        version === 1 ? 'a version 1 image, which has no binding' : 'an image bound to no Checkpoint';
      expect(r.logged).toEqual([expect.stringMatching(new RegExp(`: ${why}$`))]);
    }
  });
});

test(`an image today's writer binds (format ${FORMAT_VERSION}) is served`, async () => {
  const path = join(dir, 'today.fdckpt');
  const binding = { namespace: 'default', name: 'today', uid: 'today-uid' };
  await writeBoundImage(path, binding);
  expect((await readImageFile(path)).version).toBe(FORMAT_VERSION);
  expect((await get(servable(path, binding))).status).toBe(200);
});

test('a version the reader does not know is refused by both', async () => {
  const unknown = Math.max(...READABLE_VERSIONS) + 1;
  const bound = FIXTURES.filter((f) => f.binding).sort((a, b) => b.version - a.version)[0]!;
  const bytes = readFileSync(join(FIXTURE_DIR, bound.file));
  bytes.writeUInt32LE(unknown, 8);
  const path = join(dir, `v${unknown}.fdckpt`);
  writeFileSync(path, bytes);
  await expect(readImageFile(path)).rejects.toThrow(`unknown format version ${unknown}`);
  const { namespace, name, uid } = bound.binding!;
  const r = await get(servable(path, { namespace, name, uid }));
  expect(r.status).toBe(409);
  expect(r.logged).toEqual([expect.stringMatching(new RegExp(`: unknown image format version ${unknown}$`))]);
});
