/**
 * Helpers of the image-transfer tests: random images, a TCP relay that can
 * cut or damage what the server sends (TLS passes through it untouched
 * otherwise), and the transfer server run in its own process so that it can
 * be SIGKILLed and started again.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { TransferError } from '../../src/agent/transfer/errors.js';
import type { ServableImage, TransferAuthorizer } from '../../src/agent/transfer/server.js';

/** A served image and the one bearer token the transport tests' server accepts for it. */
export interface TestImage extends ServableImage {
  token: string;
}

/**
 * For the tests of the transport itself (ranges, resume, TLS pinning, limits): a server
 * that lets one fixed token have everything. The agent's real rule, with the API server,
 * is tested in test/security/transfer-auth.test.ts.
 */
export function tokenAuthorizer(...tokens: string[]): TransferAuthorizer {
  const h = (s: string): Buffer => createHash('sha256').update(s).digest();
  return (credential) =>
    Promise.resolve(
      tokens.some((t) => timingSafeEqual(h(credential), h(t)))
        ? { allowed: true, peer: 'the test client' }
        : { allowed: false, status: 403, reason: 'not the test token' },
    );
}

export function makeImage(path: string, bytes: number): TestImage {
  const data = randomBytes(bytes);
  writeFileSync(path, data);
  return {
    path,
    size: bytes,
    sha256: createHash('sha256').update(data).digest('hex'),
    token: randomBytes(32).toString('hex'),
  };
}

/** The TransferError a promise rejects with; fails when it succeeds or throws something else. */
export async function failure(p: Promise<unknown>): Promise<TransferError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TransferError) return err;
    throw err;
  }
  throw new Error('the transfer succeeded');
}

/**
 * What the relay does with the server's bytes on connection `n` (0-based):
 * pass them, or stop (cut both sides) once `cutAfter` bytes have gone
 * through, or flip the byte at `flipAt`.
 */
export interface RelayPlan {
  cutAfter?: number;
  flipAt?: number;
}

export interface Relay {
  port: number;
  /** Server-to-client bytes forwarded, all connections together. */
  sent: number;
  connections: number;
  close(): Promise<void>;
}

export async function startRelay(upstreamPort: number, plan: (n: number) => RelayPlan): Promise<Relay> {
  const sockets = new Set<Socket>();
  const relay: Relay = { port: 0, sent: 0, connections: 0, close: () => Promise.resolve() };
  const server = createServer((client) => {
    const { cutAfter, flipAt } = plan(relay.connections++);
    const up = connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(up);
    let seen = 0;
    client.pipe(up);
    up.on('data', (chunk: Buffer) => {
      if (cutAfter !== undefined && seen + chunk.length >= cutAfter) {
        const part = chunk.subarray(0, cutAfter - seen);
        relay.sent += part.length;
        client.write(part, () => {
          client.destroy();
          up.destroy();
        });
        up.pause();
        return;
      }
      if (flipAt !== undefined && flipAt >= seen && flipAt < seen + chunk.length) {
        chunk[flipAt - seen] = (chunk[flipAt - seen] ?? 0) ^ 0xff;
      }
      seen += chunk.length;
      relay.sent += chunk.length;
      client.write(chunk);
    });
    up.on('end', () => client.end());
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
    client.on('close', () => sockets.delete(client));
    up.on('close', () => sockets.delete(up));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  relay.port = typeof address === 'object' && address ? address.port : 0;
  relay.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return relay;
}

/**
 * The server module and the project modules it imports (image/format.ts), compiled to
 * JS under `dir`/js with src/'s layout; returns the server's path there. Anything
 * but node: modules and relative imports is refused: the process has no node_modules.
 */
function compileServer(dir: string): string {
  const src = fileURLToPath(new URL('../../src/', import.meta.url));
  const out = join(dir, 'js');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
  const todo = ['agent/transfer/server.ts'];
  for (const done = new Set<string>(); todo.length > 0;) {
    const rel = todo.pop()!;
    if (done.has(rel)) continue;
    done.add(rel);
    const js = ts.transpileModule(readFileSync(join(src, rel), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    for (const [, spec = ''] of js.matchAll(/\bfrom\s+['"]([^'"]+)['"]/g)) {
      if (spec.startsWith('node:')) continue;
      if (!spec.startsWith('.'))
        throw new Error(`${rel} imports ${spec}: the server process has node: modules only`);
      todo.push(posix.join(posix.dirname(rel), spec.replace(/\.js$/, '.ts')));
    }
    const target = join(out, rel.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, js);
  }
  return join(out, 'agent/transfer/server.js');
}

/**
 * The server module compiled to JS and run in its own process on `port`
 * (0: any), serving `image` with `tls`; resolves once it listens.
 */
export async function serverProcess(
  dir: string,
  image: TestImage,
  tls: { key: string; cert: string },
  port = 0,
): Promise<{ proc: ChildProcess; url: string; port: number }> {
  const server = compileServer(dir);
  writeFileSync(
    join(dir, 'main.mjs'),
    `import { startTransferServer } from ${JSON.stringify(pathToFileURL(server).href)};
const { image, tls, port } = JSON.parse(process.argv[2]);
const authorize = async (credential) => credential === image.token ? { allowed: true, peer: 'test' } : { allowed: false, status: 403, reason: 'not the test token' };
const s = await startTransferServer({ host: '127.0.0.1', port, tls, root: image.path.slice(0, image.path.lastIndexOf('/')), authorize, lookup: async () => image });
process.stdout.write(s.port + ' ' + s.url + '\\n');`,
  );
  const proc = spawn(process.execPath, [join(dir, 'main.mjs'), JSON.stringify({ image, tls, port })], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    proc.stdout?.once('data', (d: Buffer) => resolve(d.toString().trim()));
    proc.once('exit', (code) => reject(new Error(`server process exited with ${code}`)));
  });
  const [p = '0', url = ''] = line.split(' ');
  return { proc, url, port: Number(p) };
}

/** SIGKILL and wait for the exit. */
export async function kill(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGKILL');
  await exited;
}
