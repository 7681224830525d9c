/**
 * Path globs of restore policies, matched in O(path × glob) time whatever
 * the glob: `*` and `?` stay within one path component, `**` crosses them.
 *
 * The glob comes from whoever may create a Restore, and the agent matches it
 * against every fd of an image: a backtracking matcher (a RegExp such as
 * `^.*a.*a.*a…X$`) takes exponential time on a near-miss and stops the whole
 * agent (issue 12, item 5). This one runs the glob as an NFA, keeping the set
 * of positions reachable after each character of the path (Thompson's
 * construction without the regex), so each character costs at most one visit
 * per glob token.
 */

import { MAX_GLOB_LENGTH } from '../../shared/policy-limits.js';
export { MAX_GLOB_LENGTH, MAX_POLICY_RULES } from '../../shared/policy-limits.js';

type Token =
  | { kind: 'char'; ch: string }
  /** `?`: one character other than `/`. */
  | { kind: 'one' }
  /** `*`: any run of characters without `/`. */
  | { kind: 'star' }
  /** `**`: any run of characters. */
  | { kind: 'globstar' };

/** A compiled glob. */
export interface Glob {
  readonly source: string;
  test(path: string): boolean;
}

function tokens(glob: string): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') {
      let run = 1;
      while (glob[i + 1] === '*') {
        run++;
        i++;
      }
      // `***` is `**` followed by `*`, which matches what `**` alone does.
      out.push({ kind: run >= 2 ? 'globstar' : 'star' });
    } else if (ch === '?') out.push({ kind: 'one' });
    else out.push({ kind: 'char', ch });
  }
  return out;
}

/** Compile `glob`; throws when it is longer than MAX_GLOB_LENGTH. */
export function compileGlob(glob: string): Glob {
  if (glob.length > MAX_GLOB_LENGTH) {
    throw new Error(`glob of ${glob.length} characters: at most ${MAX_GLOB_LENGTH}`);
  }
  const toks = tokens(glob);
  const accept = toks.length;
  return {
    source: glob,
    test(path: string): boolean {
      // mark[s] === gen: state s is in the set being built; a generation
      // counter saves clearing the array for each character.
      const mark = new Uint32Array(accept + 1);
      let gen = 1;
      let current: number[] = [];
      let next: number[] = [];
      // Add s and what it reaches without reading a character: a star may match nothing.
      const add = (set: number[], s: number): void => {
        while (mark[s] !== gen) {
          mark[s] = gen;
          set.push(s);
          const t = toks[s];
          if (!t || (t.kind !== 'star' && t.kind !== 'globstar')) return;
          s++;
        }
      };
      add(current, 0);
      for (let i = 0; i < path.length && current.length > 0; i++) {
        const c = path[i]!;
        gen++;
        next.length = 0;
        for (const s of current) {
          const t = toks[s];
          if (!t) continue; // accept state: the path goes on past the glob
          if (t.kind === 'char') {
            if (t.ch === c) add(next, s + 1);
          } else if (t.kind === 'one') {
            if (c !== '/') add(next, s + 1);
          } else if (t.kind === 'globstar' || c !== '/') add(next, s);
        }
        [current, next] = [next, current];
      }
      return mark[accept] === gen;
    },
  };
}
