/**
 * .dockerignore against deploy/Dockerfile: every path the Dockerfile COPYs from the
 * build context is sent (all of its tracked files), nothing else tracked is, and the
 * big or irrelevant directories (.git, node_modules, dist, test, bench, native/build…)
 * are left out. Patterns are matched as Docker does: relative to the context root,
 * `*` and `?` within one path segment, `**` across segments, a match on a directory
 * covering its contents, the last matching line deciding, `!` re-including.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';

const repo = fileURLToPath(new URL('../../', import.meta.url));

interface Rule {
  negated: boolean;
  regex: RegExp;
}

function globRegex(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      // `**/` is zero or more whole segments; a trailing `**` anything below.
      out += pattern[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += pattern[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

function rules(text: string): Rule[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negated = l.startsWith('!');
      const pattern = (negated ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '');
      return { negated, regex: globRegex(pattern) };
    });
}

/** Whether `path` (relative, with /) is left out of the build context. */
function excluded(all: Rule[], path: string): boolean {
  const parts = path.split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let out = false;
  for (const r of all) if (prefixes.some((p) => r.regex.test(p))) out = !r.negated;
  return out;
}

/** The context paths of the Dockerfile's COPY lines (not those copying from a stage). */
function copySources(dockerfile: string): string[] {
  return dockerfile
    .split('\n')
    .filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l))
    .flatMap((l) => l.trim().split(/\s+/).slice(1, -1).filter((a) => !a.startsWith('--')))
    .map((s) => s.replace(/^\.\//, '').replace(/\/$/, ''));
}

describe('.dockerignore', () => {
  const ignore = rules(readFileSync(`${repo}.dockerignore`, 'utf8'));
  const sources = copySources(readFileSync(`${repo}deploy/Dockerfile`, 'utf8'));
  const tracked = execFileSync('git', ['ls-files'], { cwd: repo, encoding: 'utf8' }).trim().split('\n');
  const copied = (f: string): boolean => sources.some((s) => f === s || f.startsWith(`${s}/`));

  test('the Dockerfile copies what the build needs', () => {
    expect([...new Set(sources)].sort()).toEqual(
      ['bin', 'native', 'package-lock.json', 'package.json', 'src', 'tsconfig.build.json', 'tsconfig.json'].sort(),
    );
  });

  test('every tracked file the Dockerfile COPYs is in the context', () => {
    const wanted = tracked.filter(copied);
    expect(wanted.length).toBeGreaterThan(50);
    expect(wanted.filter((f) => excluded(ignore, f))).toEqual([]);
  });

  test('no other tracked file is', () => {
    expect(tracked.filter((f) => !copied(f) && !excluded(ignore, f))).toEqual([]);
  });

  test('build outputs, tests, benches and checkouts are left out', () => {
    for (const path of [
      '.git/HEAD',
      'node_modules/pino/package.json',
      'dist/cli/main.js',
      'build/bench/capture.js',
      'coverage/lcov.info',
      'native/build/fdckpt-hold',
      'test/cli/log-level.test.ts',
      'bench/RESULTS.md',
      'docs/operator.md',
      'tmp/x',
      'src/agent/left-behind.fdimg',
      'hack/kube/go.mod',
    ])
      expect({ path, excluded: excluded(ignore, path) }).toEqual({ path, excluded: true });
  });
});
