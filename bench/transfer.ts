/**
 * bench/transfer: one image fetched between two agents' transfer code, over
 * pinned TLS and over plain HTTP, on 127.0.0.1: a real image of a process
 * holding 10 000 fds (captured from test/fixtures/fdproc.py) and a 100 MiB
 * file. The server runs in its own process (as the source agent would), the
 * client here (the target agent): write to the part file, SHA-256, rename.
 * Also: the 100 MiB image over TLS cut once at half by a relay and resumed
 * (retry without wait), against the same through the relay uncut.
 * Run: npm run bench:transfer
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { capture } from '../src/agent/capture/index.js';
import { writeImage } from '../src/agent/image/index.js';
import { fetchImage } from '../src/agent/transfer/client.js';
import type { FetchResult } from '../src/agent/transfer/client.js';
import type { TestImage } from '../test/support/transfer.js';
import { certSha256, selfSignedCert } from '../src/tls/x509.js';
import { startFixture } from '../test/support/fixture.js';
import { startRelay } from '../test/support/transfer.js';

const RUNS = Number(process.env['BENCH_REPS'] ?? 5);
const SERVER = fileURLToPath(new URL('../src/agent/transfer/server.js', import.meta.url));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function servable(path: string): TestImage {
  const data = readFileSync(path);
  return {
    path,
    size: data.length,
    sha256: createHash('sha256').update(data).digest('hex'),
    token: randomBytes(32).toString('hex'),
  };
}

/** The transfer server in its own process; resolves with its port once it listens. */
async function serve(
  image: TestImage,
  tls?: { key: string; cert: string },
): Promise<{ proc: ChildProcess; port: number }> {
  const main = `import { startTransferServer } from ${JSON.stringify(SERVER)};
const { image, tls } = JSON.parse(process.argv[1]);
const s = await startTransferServer({ host: '127.0.0.1', tls, root: image.path.slice(0, image.path.lastIndexOf('/')), authorize: async (c) => c === image.token ? { allowed: true, peer: 'bench' } : { allowed: false, status: 403, reason: 'not the bench token' }, lookup: async () => image });
process.stdout.write(s.port + '\\n');`;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', main, JSON.stringify({ image, tls })], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    proc.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return { proc, port };
}

interface Run {
  ms: number;
  cpuMs: number;
  result: FetchResult;
}

async function fetchOnce(image: TestImage, url: string, dir: string, pin?: string): Promise<Run> {
  const dest = join(dir, `got-${randomBytes(4).toString('hex')}`);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await fetchImage({
    url,
    ...(pin ? { certSha256: pin } : {}),
    allowInsecure: !pin,
    namespace: 'default',
    checkpoint: 'bench',
    token: image.token,
    dest,
    sha256: image.sha256,
    size: image.size,
    retry: { attempts: 3, initialDelayMs: 0, maxDelayMs: 0 },
  });
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  rmSync(dest);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, result };
}

function row(label: string, image: TestImage, runs: Run[]): string {
  const ms = median(runs.map((r) => r.ms));
  const mbps = image.size / 1e6 / (ms / 1000);
  const cpu = median(runs.map((r) => r.cpuMs));
  const attempts = Math.max(...runs.map((r) => r.result.attempts));
  const received = Math.max(...runs.map((r) => r.result.received));
  return `| ${label} | ${(image.size / 1e6).toFixed(2)} | ${ms.toFixed(1)} | ${mbps.toFixed(0)} | ${cpu.toFixed(1)} | ${attempts} | ${(received / 1e6).toFixed(2)} |`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fdckpt-bench-transfer-'));
  const children: ChildProcess[] = [];
  try {
    // A real image: what the agent would write for a process holding 10 000 fds.
    const fx = await startFixture(['many'], { FDPROC_MANY: '10000' });
    try {
      await writeImage(join(dir, 'fds10k.fdckpt'), capture([fx.pid]).checkpoint);
    } finally {
      await fx.stop();
    }
    writeFileSync(join(dir, 'big.fdckpt'), randomBytes(100 * 1024 * 1024));
    const tls = selfSignedCert('fdckpt-agent bench', 1);
    const pin = certSha256(tls.cert);
    const rows: string[] = [];
    for (const [name, file] of [
      ['10k fds', 'fds10k.fdckpt'],
      ['100 MiB', 'big.fdckpt'],
    ] as const) {
      const image = servable(join(dir, file));
      for (const mode of ['https', 'http'] as const) {
        const s = await serve(image, mode === 'https' ? tls : undefined);
        children.push(s.proc);
        const url = `${mode}://127.0.0.1:${s.port}`;
        await fetchOnce(image, url, dir, mode === 'https' ? pin : undefined); // warm-up
        const runs: Run[] = [];
        for (let i = 0; i < RUNS; i++)
          runs.push(await fetchOnce(image, url, dir, mode === 'https' ? pin : undefined));
        rows.push(row(`${name}, ${mode === 'https' ? 'TLS 1.3 pinned' : 'plain HTTP'}`, image, runs));
        s.proc.kill('SIGKILL');
      }
      if (name === '100 MiB') {
        const s = await serve(image, tls);
        children.push(s.proc);
        for (const cut of [false, true]) {
          const runs: Run[] = [];
          for (let i = 0; i < RUNS; i++) {
            const relay = await startRelay(s.port, (n) =>
              cut && n === 0 ? { cutAfter: image.size / 2 } : {},
            );
            try {
              runs.push(await fetchOnce(image, `https://127.0.0.1:${relay.port}`, dir, pin));
            } finally {
              await relay.close();
            }
          }
          rows.push(row(`${name}, TLS via relay${cut ? ', cut at 50 % and resumed' : ''}`, image, runs));
        }
        s.proc.kill('SIGKILL');
      }
    }
    process.stdout.write(
      `${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, kernel ${release()}, ` +
        `Node ${process.version}, load ${loadavg()[0]?.toFixed(1) ?? '?'}, ${new Date().toISOString()}\n` +
        `Median of ${RUNS} (after one warm-up); client = this process (receive, write the part file, SHA-256, rename), ` +
        `server = another process.\n\n` +
        `| image, channel | MB | ms | MB/s | client CPU ms | attempts | MB received |\n|---|---:|---:|---:|---:|---:|---:|\n${rows.join('\n')}\n`,
    );
  } finally {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
