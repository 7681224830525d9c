/**
 * scripts/image/build.sh: the OCI archives it writes are well formed (index, manifest
 * and config parse, every digest and size matches its blob, diff_ids are the digests
 * of the uncompressed layers), the fdckpt rootfs holds every file deploy/Dockerfile's
 * runtime stage COPYs, its node and the fdckpt CLI run in it (chroot: we are root),
 * koffi loads there, the launcher and pause are static, pause exits 0 on SIGTERM and
 * SIGINT and ignores other signals, and a second, independent build gives the same
 * bytes. The build caches (outside the checkout), so only the first run is slow.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const BUILD = join(repo, 'scripts', 'image', 'build.sh');
const BUILD_TIMEOUT = 15 * 60_000;
const IMAGE_PATH = '/usr/local/bin:/usr/bin:/bin';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}
interface Manifest {
  schemaVersion: number;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}
interface ImageConfig {
  architecture: string;
  os: string;
  config: { Env: string[]; Entrypoint: string[]; WorkingDir: string };
  rootfs: { type: string; diff_ids: string[] };
}
interface Image {
  layout: string;
  index: { schemaVersion: number; manifests: Descriptor[] };
  manifest: Manifest;
  config: ImageConfig;
}

/** The command's path, or a thrown error naming it: the test fails, never skips. */
function need(cmd: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], {
    encoding: 'utf8',
    env: { PATH: `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin` },
  });
  const path = r.stdout.trim();
  if (r.status !== 0 || !path)
    throw new Error(`test prerequisite missing: ${cmd} (scripts/image/build.sh and this test need it)`);
  return path;
}

/** Runs build.sh; its last stdout line is the result directory. */
function build(env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync('bash', [BUILD], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: BUILD_TIMEOUT,
    env: { ...process.env, ...env },
  });
  if (r.status !== 0) throw new Error(`scripts/image/build.sh failed (${r.error?.message ?? r.status}):\n${r.stderr}`);
  return r.stdout.trim().split('\n').pop() ?? '';
}

const sha256 = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const blobPath = (layout: string, digest: string): string => join(layout, 'blobs', 'sha256', digest.slice(7));
const json = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

function tar(...args: string[]): void {
  const r = spawnSync('tar', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar ${args.join(' ')}: ${r.stderr}`);
}

function unpackLayout(archive: string, into: string): Image {
  mkdirSync(into, { recursive: true });
  tar('-C', into, '-xf', archive);
  const index = json<Image['index']>(join(into, 'index.json'));
  const manifest = json<Manifest>(blobPath(into, index.manifests[0]!.digest));
  const config = json<ImageConfig>(blobPath(into, manifest.config.digest));
  return { layout: into, index, manifest, config };
}

/** The destinations (absolute) of the runtime stage's COPYs, with their context sources. */
function runtimeCopies(dockerfile: string): { dest: string; source?: string }[] {
  const stages = dockerfile.split(/^FROM\s/m);
  const last = stages[stages.length - 1]!;
  let workdir = '/';
  const out: { dest: string; source?: string }[] = [];
  for (const line of last.split('\n')) {
    const w = /^WORKDIR\s+(\S+)/.exec(line);
    if (w) workdir = w[1]!;
    if (!/^COPY\s/.test(line)) continue;
    const args = line.trim().split(/\s+/).slice(1);
    const fromStage = args.some((a) => a.startsWith('--from='));
    const paths = args.filter((a) => !a.startsWith('--'));
    const dest = paths[paths.length - 1]!;
    const abs = dest.startsWith('/') ? dest : join(workdir, dest);
    for (const src of paths.slice(0, -1)) {
      const name = src.replace(/\/$/, '').split('/').pop()!;
      // `COPY a b ./` puts each into the directory; `COPY a ./x` names the target.
      const target = paths.length > 2 || dest.endsWith('/') ? join(abs, name) : abs;
      out.push(fromStage ? { dest: target } : { dest: target, source: src.replace(/^\.\//, '') });
    }
  }
  return out;
}

describe('scripts/image/build.sh', () => {
  let dir = '';
  let work = '';
  let fdckpt: Image;
  let pause: Image;
  let rootfs = '';
  let pauseRoot = '';
  let chroot = '';

  beforeAll(() => {
    for (const cmd of ['gcc', 'make', 'tar', 'gzip', 'sha256sum', 'flock', 'ldd', 'git', 'npm']) need(cmd);
    chroot = need('chroot');
    dir = build();
    work = mkdtempSync(join(tmpdir(), 'fdckpt-image-'));
    fdckpt = unpackLayout(join(dir, 'fdckpt.tar'), join(work, 'fdckpt'));
    pause = unpackLayout(join(dir, 'pause.tar'), join(work, 'pause'));
    rootfs = join(work, 'rootfs');
    mkdirSync(rootfs);
    for (const l of fdckpt.manifest.layers) tar('-C', rootfs, '-xzf', blobPath(fdckpt.layout, l.digest));
    pauseRoot = join(work, 'pause-root');
    mkdirSync(pauseRoot);
    for (const l of pause.manifest.layers) tar('-C', pauseRoot, '-xzf', blobPath(pause.layout, l.digest));
  }, BUILD_TIMEOUT);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('prints a directory with both archives and images.env', () => {
    expect(readFileSync(join(dir, 'images.env'), 'utf8')).toBe(
      'FDCKPT_IMAGE=localhost/fdckpt:dev\nPAUSE_IMAGE=localhost/fdckpt-pause:1\n',
    );
  });

  test.each([
    ['fdckpt', 'localhost/fdckpt:dev', 'dev'],
    ['pause', 'localhost/fdckpt-pause:1', '1'],
  ])('%s: the OCI layout is well formed and every digest matches its blob', (which, ref, tag) => {
    const img = which === 'fdckpt' ? fdckpt : pause;
    expect(json(join(img.layout, 'oci-layout'))).toEqual({ imageLayoutVersion: '1.0.0' });
    expect(img.index.schemaVersion).toBe(2);
    expect(img.index.manifests).toHaveLength(1);
    const m = img.index.manifests[0]!;
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(m.annotations).toEqual({ 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': tag });
    expect(m.platform).toEqual({ architecture: img.config.architecture, os: 'linux' });
    expect(img.manifest.schemaVersion).toBe(2);
    expect(img.manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(img.manifest.config.mediaType).toBe('application/vnd.oci.image.config.v1+json');
    const check = (d: Descriptor): Buffer => {
      const data = readFileSync(blobPath(img.layout, d.digest));
      expect({ digest: sha256(data), size: data.length }).toEqual({ digest: d.digest, size: d.size });
      return data;
    };
    check(m);
    check(img.manifest.config);
    const diffs = img.manifest.layers.map((l) => {
      expect(l.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
      return sha256(gunzipSync(check(l)));
    });
    expect(img.config.rootfs).toEqual({ type: 'layers', diff_ids: diffs });
    // Nothing in blobs/ that the manifest does not name.
    const named = [m, img.manifest.config, ...img.manifest.layers].map((d) => d.digest.slice(7)).sort();
    expect(readdirSync(join(img.layout, 'blobs', 'sha256')).sort()).toEqual(named);
  });

  test('the image config is the Dockerfile runtime stage', () => {
    const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch as 'x64' | 'arm64'] ?? process.arch;
    expect(fdckpt.config.architecture).toBe(arch);
    expect(fdckpt.config.os).toBe('linux');
    expect(fdckpt.config.config).toMatchObject({
      Env: [
        `PATH=${IMAGE_PATH}`,
        'NODE_ENV=production',
        'FDCKPT_HOLD=/usr/local/lib/fdckpt/fdckpt-hold',
        'FDCKPT_SCAN_LIB=/usr/local/lib/fdckpt/libfdckpt-scan.so',
      ],
      Entrypoint: ['node', '/opt/fdckpt/bin/fdckpt.js'],
      WorkingDir: '/opt/fdckpt',
    });
    expect(pause.config.config.Entrypoint).toEqual(['/pause']);
  });

  test('the rootfs holds every file the runtime stage COPYs', () => {
    const copies = runtimeCopies(readFileSync(join(repo, 'deploy', 'Dockerfile'), 'utf8'));
    expect(copies.map((c) => c.dest).sort()).toEqual(
      [
        '/opt/fdckpt/bin',
        '/opt/fdckpt/dist',
        '/opt/fdckpt/node_modules',
        '/opt/fdckpt/package.json',
        '/usr/local/lib/fdckpt/fdckpt-hold',
        '/usr/local/lib/fdckpt/libfdckpt-scan.so',
      ].sort(),
    );
    for (const c of copies) {
      expect({ dest: c.dest, exists: existsSync(join(rootfs, c.dest)) }).toEqual({ dest: c.dest, exists: true });
      if (!c.source) continue;
      // From the build context: each tracked file, byte for byte.
      const files = spawnSync('git', ['ls-files', '--', c.source], { cwd: repo, encoding: 'utf8' })
        .stdout.trim()
        .split('\n');
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) {
        const inImage = join(c.dest, f.slice(c.source.length));
        expect({ f, same: readFileSync(join(rootfs, inImage)).equals(readFileSync(join(repo, f))) }).toEqual({
          f,
          same: true,
        });
      }
    }
    expect(existsSync(join(rootfs, 'opt/fdckpt/dist/cli/main.js'))).toBe(true);
    // Production dependencies only (npm prune --omit=dev).
    const pkg = json<{ dependencies: Record<string, string>; devDependencies: Record<string, string> }>(
      join(repo, 'package.json'),
    );
    for (const d of Object.keys(pkg.dependencies))
      expect({ d, there: existsSync(join(rootfs, 'opt/fdckpt/node_modules', d, 'package.json')) }).toEqual({
        d,
        there: true,
      });
    for (const d of ['jest', 'typescript', 'eslint'])
      expect({ d, there: existsSync(join(rootfs, 'opt/fdckpt/node_modules', d)) }).toEqual({ d, there: false });
    expect(statSync(join(rootfs, 'tmp')).mode & 0o7777).toBe(0o1777);
    expect(readFileSync(join(rootfs, 'etc/passwd'), 'utf8')).toMatch(/^nonroot:x:65532:65532:/m);
  });

  const inRoot = (...argv: string[]): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(chroot, [rootfs, ...argv], {
      encoding: 'utf8',
      env: {
        PATH: IMAGE_PATH,
        NODE_ENV: 'production',
        FDCKPT_HOLD: '/usr/local/lib/fdckpt/fdckpt-hold',
        FDCKPT_SCAN_LIB: '/usr/local/lib/fdckpt/libfdckpt-scan.so',
      },
      timeout: 60_000,
    });

  test('node and the fdckpt CLI run in the rootfs, and koffi loads there', () => {
    const host = spawnSync(process.execPath, ['--version'], { encoding: 'utf8' }).stdout;
    expect(inRoot('/usr/local/bin/node', '--version')).toMatchObject({ status: 0, stdout: host });
    const version = json<{ version: string }>(join(repo, 'package.json')).version;
    expect(inRoot('/usr/local/bin/node', '/opt/fdckpt/bin/fdckpt.js', '--version')).toMatchObject({
      status: 0,
      stdout: `fdckpt ${version}\n`,
    });
    // chroot starts in /: resolve koffi from /opt/fdckpt as the image's WorkingDir would.
    const koffi = inRoot(
      '/usr/local/bin/node',
      '--input-type=module',
      '-e',
      "import { createRequire } from 'node:module';" +
        "const k = (await import(createRequire('/opt/fdckpt/').resolve('koffi'))).default;" +
        "console.log(k.load('libc.so.6').func('int getpid()')() > 0);",
    );
    expect(koffi).toMatchObject({ status: 0, stdout: 'true\n' });
    // The host scan's library loads against the image's libc (a buffer below one record: -EINVAL).
    const scan = inRoot(
      '/usr/local/bin/node',
      '--input-type=module',
      '-e',
      "import { createRequire } from 'node:module';" +
        "const k = (await import(createRequire('/opt/fdckpt/').resolve('koffi'))).default;" +
        "const f = k.load(process.env.FDCKPT_SCAN_LIB).func('long fdckpt_fd_links(int, void *, size_t)');" +
        'console.log(Number(f(0, null, 0)));',
    );
    expect(scan).toMatchObject({ status: 0, stdout: '-22\n' });
    expect(inRoot('cp', '/usr/local/lib/fdckpt/fdckpt-hold', '/tmp/hold')).toMatchObject({ status: 0 });
  });

  test('the launcher and pause are static', () => {
    expect(spawnSync('ldd', [join(rootfs, 'usr/local/lib/fdckpt/fdckpt-hold')]).status).not.toBe(0);
    expect(readdirSync(pauseRoot)).toEqual(['pause']);
    expect(spawnSync('ldd', [join(pauseRoot, 'pause')]).status).not.toBe(0);
  });

  test.each(['SIGTERM', 'SIGINT'] as const)('pause ignores SIGHUP and exits 0 on %s', async (stop) => {
    const child = spawn(join(pauseRoot, 'pause'), [], { stdio: 'ignore' });
    const exited = new Promise<[number | null, string | null]>((resolve) =>
      child.on('exit', (code, sig) => resolve([code, sig])),
    );
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGHUP');
    child.kill('SIGUSR1');
    await new Promise((r) => setTimeout(r, 200));
    expect(child.exitCode).toBeNull();
    child.kill(stop);
    expect(await exited).toEqual([0, null]);
  });

  test(
    'a second, independent build gives the same archives',
    () => {
      const cache = join(work, 'cache');
      const again = build({ FDCKPT_IMAGE_CACHE: cache });
      expect(again.startsWith(cache)).toBe(true);
      const other = unpackLayout(join(again, 'fdckpt.tar'), join(work, 'again'));
      expect(other.index.manifests[0]!.digest).toBe(fdckpt.index.manifests[0]!.digest);
      for (const f of ['fdckpt.tar', 'pause.tar'])
        expect(sha256(readFileSync(join(again, f)))).toBe(sha256(readFileSync(join(dir, f))));
    },
    BUILD_TIMEOUT,
  );
});
