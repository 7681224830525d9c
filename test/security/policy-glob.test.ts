/**
 * Issue 12, item 5: a restore-policy glob is attacker input matched against
 * every fd of an image. `/**a**a…X` against a 44-character path stopped the
 * agent for 23 s with the backtracking matcher; globs are now matched as an
 * NFA (O(path × glob)), and policies are bounded in count and length in the
 * parser, the controller's validation and the CRDs.
 */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import * as yaml from 'js-yaml';
import { writeImage } from '../../src/agent/image/index.js';
import type { Checkpoint } from '../../src/agent/model.js';
import { O } from '../../src/agent/model.js';
import { MAX_GLOB_LENGTH, compileGlob } from '../../src/agent/replay/glob.js';
import { MAX_POLICY_RULES, decide, parsePolicy } from '../../src/agent/replay/policy.js';
import { validateRestoreSpec } from '../../src/api/validate.js';

const ATTACK = `/${'**a'.repeat(14)}**X`;
const PATH = `/${'a'.repeat(43)}`; // 44 characters, no X: the near-miss that backtracks

function checkpointWith(path: string): Checkpoint {
  return {
    header: { node: 'n', source: 's', time: 1, kernel: 'k', tool: 't' },
    processes: [{ pid: 10, tgid: 10, comm: 'c', argv: ['c'], cwd: '/', table: 100 }],
    tables: [{ objref: 100, fds: [{ fd: 3, file: 1, cloexec: false }] }],
    files: [
      {
        objref: 1,
        type: 'regular',
        flags: O.RDONLY,
        pos: 0,
        path,
        mntId: 1,
        dev: 1,
        ino: 1,
        mode: 0o100644,
        data: { type: 'regular', size: 0 },
      },
    ],
  };
}

/** What the glob means, as the old RegExp translation said it (fine on small inputs). */
function reference(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

describe('policy globs', () => {
  it('the backtracking glob against a 44-character path answers (the real CLI, a dry-run restore)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fdckpt-sec-glob-'));
    try {
      const image = join(dir, 'img.fdckpt');
      const policy = join(dir, 'policy.yaml');
      await writeImage(image, checkpointWith(PATH));
      const rules = [
        { path: ATTACK, action: 'fail' },
        { type: 'regular', action: 'skip' },
      ];
      writeFileSync(policy, yaml.dump({ rules }));
      // A hang guard, not a benchmark: the backtracking matcher took minutes on this glob.
      const bin = fileURLToPath(new URL('../../bin/fdckpt.js', import.meta.url));
      const r = spawnSync(
        process.execPath,
        [bin, 'restore', '--image', image, '--policy', policy, '--dry-run'],
        {
          encoding: 'utf8',
          timeout: 30_000,
        },
      );
      expect(r.signal).toBeNull();
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^restorable: /);
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the glob decides as before: the attack glob matches only what it says', () => {
    const policy = parsePolicy(yaml.dump({ rules: [{ path: ATTACK, action: 'skip' }] }));
    const file = checkpointWith(PATH).files[0]!;
    expect(decide(policy, 3, file).action).toBe('fail');
    expect(decide(policy, 3, { ...file, path: `${PATH.slice(0, 20)}/x/${'a'.repeat(14)}X` }).action).toBe(
      'skip',
    );
  });

  it('matches exactly what the RegExp translation matched, on random globs and paths', () => {
    const alphabet = fc.constantFrom('a', 'b', '/', '*', '?', '.');
    const pathChars = fc.constantFrom('a', 'b', '/', '.', '*', '?');
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 10 }).map((a) => a.join('')),
        fc.array(pathChars, { maxLength: 12 }).map((a) => a.join('')),
        (glob, path) => compileGlob(glob).test(path) === reference(glob).test(path),
      ),
      { numRuns: 5000 },
    );
  });

  it('refuses a policy with too many rules or too long a glob, naming the limit', () => {
    const many = { rules: Array.from({ length: MAX_POLICY_RULES + 1 }, () => ({ action: 'skip' })) };
    expect(() => parsePolicy(yaml.dump(many))).toThrow(`at most ${MAX_POLICY_RULES}`);
    const long = { rules: [{ path: `/${'a'.repeat(MAX_GLOB_LENGTH)}`, action: 'skip' }] };
    expect(() => parsePolicy(yaml.dump(long))).toThrow(
      `rule 1: path glob of ${MAX_GLOB_LENGTH + 1} characters`,
    );
    const spec = { checkpointName: 'c', policy: long } as unknown as Parameters<
      typeof validateRestoreSpec
    >[0];
    expect(validateRestoreSpec(spec).join('\n')).toContain(`at most ${MAX_GLOB_LENGTH}`);
    const specMany = { checkpointName: 'c', policy: many } as unknown as Parameters<
      typeof validateRestoreSpec
    >[0];
    expect(validateRestoreSpec(specMany).join('\n')).toContain(`at most ${MAX_POLICY_RULES}`);
  });

  it('the CRDs bound rules and globs as the parser does', () => {
    for (const crd of ['restores.fdckpt.io.yaml', 'migrations.fdckpt.io.yaml']) {
      const text = readFileSync(new URL(`../../crds/${crd}`, import.meta.url), 'utf8');
      const doc = yaml.load(text) as {
        spec: { versions: { schema: { openAPIV3Schema: unknown } }[] };
      };
      const rules = findKey(doc.spec.versions[0]!.schema.openAPIV3Schema, 'rules') as {
        maxItems: number;
        items: { properties: Record<string, { maxLength?: number }> };
      };
      expect(rules.maxItems).toBe(MAX_POLICY_RULES);
      expect(rules.items.properties['path']?.maxLength).toBe(MAX_GLOB_LENGTH);
      expect(rules.items.properties['from']?.maxLength).toBe(4096);
      expect(rules.items.properties['to']?.maxLength).toBe(4096);
    }
  });
});

/** The first value under `key` anywhere in a parsed document. */
function findKey(node: unknown, key: string): unknown {
  if (typeof node !== 'object' || node === null) return undefined;
  const rec = node as Record<string, unknown>;
  if (key in rec && typeof rec[key] === 'object' && !Array.isArray(rec[key])) return rec[key];
  for (const v of Object.values(rec)) {
    const found = findKey(v, key);
    if (found !== undefined) return found;
  }
  return undefined;
}
