/**
 * What every `fdckpt` command promises on its command line, through the real, built
 * binary: help from the one option declaration (without loading the engine or the
 * Kubernetes client), usage errors exit 2 without taking the next argument as a value,
 * `--version`, and a reader that closes the pipe early ends the CLI quietly.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeImage } from '../../src/agent/image/index.js';
import { O } from '../../src/agent/model.js';
import { SPECS } from '../../src/cli/specs.js';
import { checkpointOf, fileOf } from '../replay/support.js';
import { fdckpt } from '../support/cli.js';

const bin = fileURLToPath(new URL('../../bin/fdckpt.js', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};
const work = mkdtempSync(join(tmpdir(), 'fdckpt-contract-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * Runs the CLI with an ESM resolve hook that logs every module URL it imports: how a
 * test can see what an ESM program loaded (there is no require cache to look at).
 */
function importsOf(...args: string[]): { status: number | null; stdout: string; urls: string[] } {
  const log = join(work, `imports-${Math.random().toString(36).slice(2)}.log`);
  writeFileSync(
    join(work, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.IMPORT_LOG, r.url + '\\n');
  return r;
}\n`,
  );
  writeFileSync(
    join(work, 'register.mjs'),
    `import { register } from 'node:module';\nregister(new URL('./hooks.mjs', import.meta.url));\n`,
  );
  const r = spawnSync(process.execPath, ['--import', join(work, 'register.mjs'), bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, IMPORT_LOG: log },
    timeout: 60_000,
  });
  let urls: string[] = [];
  try {
    urls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  } catch {
    // nothing was imported through the hook: the assertions below say so
  }
  return { status: r.status, stdout: r.stdout, urls };
}

const heavy = (urls: string[]): string[] =>
  urls.filter((u) => /\/node_modules\/(koffi|@kubernetes\/client-node)\//.test(u));

describe('fdckpt help', () => {
  test('fdckpt --help lists every command with its line, exit 0; no arguments says the same on stderr, exit 2', () => {
    const r = fdckpt('--help');
    expect(r.status).toBe(0);
    for (const s of SPECS) expect(r.stdout).toContain(`  ${s.name.padEnd(10)}  ${s.summary}\n`);
    const none = fdckpt();
    expect(none.status).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toBe(r.stdout);
  });

  test('fdckpt --version prints the version of package.json', () => {
    const r = fdckpt('--version');
    expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 0, stdout: `fdckpt ${pkg.version}\n` });
  });

  test.each(SPECS.map((s) => [s.name, s] as const))(
    'fdckpt %s --help and -h: its usage and every option described, exit 0',
    (name, spec) => {
      for (const flag of ['--help', '-h']) {
        const r = fdckpt(name, flag);
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        expect(r.stdout.startsWith(`usage: fdckpt ${spec.usage}\n`)).toBe(true);
        for (const [option, o] of Object.entries(spec.options)) {
          expect(r.stdout).toMatch(new RegExp(`--${option}\\b.*\\n?.*${escape(o.description)}`));
        }
      }
    },
  );

  test('help loads neither the syscall bindings nor the Kubernetes client; the commands do', () => {
    for (const args of [['capture', '--help'], ['agent', '-h'], ['--help'], ['controller', '--help']]) {
      const r = importsOf(...args);
      expect(r.status).toBe(0);
      // The hook saw the CLI's own modules, so an empty list below means something.
      expect(r.urls.some((u) => u.endsWith('/dist/cli/main.js'))).toBe(true);
      expect({ args, heavy: heavy(r.urls) }).toEqual({ args, heavy: [] });
    }
    // The same recorder sees them when a command runs (here up to a usage error of its own).
    const capture = importsOf('capture', '--pid', 'abc', '--output', join(work, 'x.fdimg'));
    expect(capture.status).toBe(2);
    expect(heavy(capture.urls).join('\n')).toMatch(/koffi/);
    const controller = importsOf('controller', 'extra');
    expect(controller.status).toBe(2);
    expect(heavy(controller.urls).join('\n')).toMatch(/client-node/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('usage errors', () => {
  test.each(SPECS.map((s) => [s.name] as const))(
    'fdckpt %s refuses an unknown option with exit 2, without taking the next argument as its value',
    (name) => {
      // The old parser took `value` as --bogus's value and went on (controller and agent
      // then ignored the option); now the unknown option itself is the error, and the
      // next argument is not consumed even when it is an option.
      const r = fdckpt(name, '--bogus', 'value');
      expect(r.status).toBe(2);
      expect(r.stderr).toBe(`fdckpt ${name}: unknown option --bogus; see fdckpt ${name} --help\n`);
      const next = fdckpt(name, '--bogus', '--json');
      expect(next.status).toBe(2);
      expect(next.stderr).toContain('unknown option --bogus');
    },
  );

  test('a string option without its value, a boolean with one, a single option twice: exit 2', () => {
    expect(fdckpt('capture', '--output').stderr).toBe('fdckpt capture: --output needs a value\n');
    expect(fdckpt('inspect', 'x', '--json=yes').stderr).toBe('fdckpt inspect: --json takes no value\n');
    const twice = fdckpt('restore', '--image', 'a', '--image', 'b');
    expect(twice.status).toBe(2);
    expect(twice.stderr).toBe('fdckpt restore: --image given more than once\n');
    expect(fdckpt('nosuch').status).toBe(2);
  });

  test('-- ends options: restore keeps what follows as the command; diff takes it as files', async () => {
    const gone = join(work, 'never-there.log');
    const image = join(work, 'plan.fdimg');
    await writeImage(
      image,
      checkpointOf([{ fd: 7, file: fileOf('regular', gone, O.WRONLY, 0, { type: 'regular', size: 0 }) }]),
    );
    // `--help` after `--` belongs to CMD: restore runs its checks (and refuses the plan, 3).
    const r = fdckpt('restore', '--image', image, '--', 'sh', '--help');
    expect(r.stderr).toBe(`fdckpt restore: fd 7 (${gone}): ENOENT\n`);
    expect(r.status).toBe(3);
    const d = fdckpt('diff', '--', '-a', '-b');
    expect(d.status).toBe(2);
    expect(d.stderr).toMatch(/^fdckpt diff: .*-a/);
  });
});

/**
 * An image whose JSON is far larger than a pipe's buffer (64 KiB): the writer is still
 * writing when the reader goes. (Written once: objrefs must stay below the table's, 1000.)
 */
let big: Promise<string> | undefined;
function bigImage(): Promise<string> {
  big ??= writeBigImage();
  return big;
}

async function writeBigImage(): Promise<string> {
  const image = join(work, 'big.fdimg');
  const dir = `/tmp/${'a-rather-long-directory-name/'.repeat(25)}`;
  const entries = Array.from({ length: 500 }, (_, i) => ({
    fd: 3 + i,
    file: fileOf('regular', `${dir}${i}`, O.RDONLY, i, { type: 'regular', size: i }),
  }));
  await writeImage(image, checkpointOf(entries));
  return image;
}

describe('a reader that closes early', () => {
  test('fdckpt inspect --json IMAGE | head -c 10: no stack trace, the exit status of a SIGPIPE', async () => {
    const image = await bigImage();
    const whole = fdckpt('inspect', '--json', image);
    expect(whole.status).toBe(0);
    expect(whole.stdout.length).toBeGreaterThan(256 << 10);

    // A real pipe: the CLI's stdout is a pipe whose reader reads 10 bytes and closes it.
    const child = spawn(process.execPath, [bin, 'inspect', '--json', image], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const first = await new Promise<Buffer>((resolve) =>
      child.stdout.once('readable', () => resolve(child.stdout.read(10) as Buffer)),
    );
    child.stdout.destroy();
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('close', (c, s) => resolve([c, s])),
    );
    expect(first.toString()).toBe(whole.stdout.slice(0, 10));
    expect({ code, signal, stderr }).toEqual({ code: 141, signal: null, stderr: '' });
  });

  test('through a shell pipeline to head -c 10', async () => {
    const image = await bigImage();
    const r = spawnSync(
      'bash',
      [
        '-c',
        '"$0" "$1" inspect --json "$2" | head -c 10; echo " ${PIPESTATUS[0]}"',
        process.execPath,
        bin,
        image,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect({ stdout: r.stdout, stderr: r.stderr }).toEqual({ stdout: '{"version"' + ' 141\n', stderr: '' });
  });
});
