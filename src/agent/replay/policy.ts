/**
 * Per-fd restore policy: what replay does with the fds a rule matches.
 *
 *   fail     restore it; if it cannot be restored, the whole restore fails (default)
 *   skip     leave the fd closed
 *   devnull  open /dev/null there, with the saved access mode and flags
 *   remap    restore it from another path: `from` prefix replaced by `to`
 *   inherit  keep the fd the new process was started with (its own stdio)
 *
 * `allowSizeChange` (fail/remap, regular files): a file now shorter than the
 * saved offset is accepted (by default it is an error; grown files are fine).
 * `allowFileChange` (fail): a path that now names another file (another
 * device and inode than at capture) is accepted; by default it is an error,
 * so that a file swapped in after the capture (a link to /etc/shadow) is not
 * opened in its place. A remapped path is another file by design: not checked.
 * A rule matches by fd number, path glob, type, cloexec bit and/or being a listening
 * socket (all given must match);
 * the first matching rule wins. A remap rule matches only paths under `from`.
 */
import * as yaml from 'js-yaml';
import { isFileType, type FileRecord, type FileType } from '../model.js';
import type { Glob } from './glob.js';
import { MAX_GLOB_LENGTH, MAX_POLICY_RULES, compileGlob } from './glob.js';

export { MAX_GLOB_LENGTH, MAX_POLICY_RULES } from './glob.js';

export const ACTIONS = ['fail', 'skip', 'devnull', 'remap', 'inherit'] as const;
export type PolicyAction = (typeof ACTIONS)[number];

/** One rule of a restore policy. */
export interface PolicyRule {
  fd?: number;
  /** Glob on the saved path: `*` and `?` stay within one path component, `**` crosses them. */
  path?: string;
  type?: FileType;
  /** Matches by the fd's close-on-exec bit (`cloexec: true, action: skip` keeps only inherited fds). */
  cloexec?: boolean;
  /** Matches listening sockets (true) or every other fd (false). */
  listening?: boolean;
  action: PolicyAction;
  from?: string;
  to?: string;
  allowSizeChange?: boolean;
  allowFileChange?: boolean;
}

/** A restore policy: rules in order. */
export interface RestorePolicy {
  rules: PolicyRule[];
  /**
   * The target is another container than the one captured (a new pod, a migration): its
   * files are other inodes by construction (its own overlay root, the kubelet's per-pod
   * /etc/hostname, /etc/hosts, /etc/resolv.conf), so a rule that does not set
   * `allowFileChange` accepts another device and inode. The other checks (absolute,
   * normalized, not a symlink, same file type, size) still apply.
   */
  newContainer?: boolean;
}

/** What the policy decided for one fd. */
export interface FdDecision {
  action: PolicyAction;
  allowSizeChange: boolean;
  allowFileChange: boolean;
  /** The path to open (remapped when action is remap). */
  path: string;
}

/** The policy that restores everything and fails on anything it cannot (mode `all`). */
export const DEFAULT_POLICY: RestorePolicy = { rules: [] };

/**
 * Which fds a restore replays, before any rule of the user's:
 *
 *   program    what a freshly exec'd, unmodified program can use (the default):
 *              fds 0–2 are the new process's own (inherit), close-on-exec fds are
 *              left closed (exec would have closed them), listening sockets are left
 *              closed (the program binds its own again; socket handoff passes them
 *              instead), everything else is replayed
 *   inherited  only the fds without close-on-exec, stdio included
 *   all        the whole table, for programs built to take fds over
 *
 * See docs/adr/0013-default-replay.md.
 */
export const REPLAY_MODES = ['program', 'inherited', 'all'] as const;
export type ReplayMode = (typeof REPLAY_MODES)[number];

const MODE_RULES: Record<ReplayMode, readonly PolicyRule[]> = {
  program: [
    { fd: 0, action: 'inherit' },
    { fd: 1, action: 'inherit' },
    { fd: 2, action: 'inherit' },
    { cloexec: true, action: 'skip' },
    { listening: true, action: 'skip' },
  ],
  inherited: [{ cloexec: true, action: 'skip' }],
  all: [],
};

/**
 * The policy a restore runs: the user's rules first (the first match wins), then the
 * mode's. With socket handoff (`listenFds`) listening sockets are replayed in every mode.
 */
export function replayPolicy(
  mode: ReplayMode,
  user: RestorePolicy = DEFAULT_POLICY,
  options: { listenFds?: boolean; newContainer?: boolean } = {},
): RestorePolicy {
  const handoff: PolicyRule[] = options.listenFds ? [{ listening: true, action: 'fail' }] : [];
  return {
    rules: [...user.rules, ...handoff, ...MODE_RULES[mode]],
    ...(options.newContainer ? { newContainer: true } : {}),
  };
}

/** Whether a file is a listening socket (what `listening: true` matches). */
export function isListening(file: FileRecord): boolean {
  return file.data.type === 'socket' && file.data.state === 'listen';
}

function fail(where: string, why: string): never {
  throw new Error(`policy ${where}: ${why}`);
}

function parseRule(raw: unknown, index: number): PolicyRule {
  const where = `rule ${index + 1}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(where, 'must be an object');
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (
      ![
        'fd',
        'path',
        'type',
        'cloexec',
        'listening',
        'action',
        'from',
        'to',
        'allowSizeChange',
        'allowFileChange',
      ].includes(key)
    ) {
      fail(where, `unknown field ${JSON.stringify(key)}`);
    }
  }
  const action = r['action'] ?? 'fail';
  if (typeof action !== 'string' || !(ACTIONS as readonly string[]).includes(action)) {
    fail(where, `action must be one of ${ACTIONS.join(', ')}, got ${JSON.stringify(action)}`);
  }
  const rule: PolicyRule = { action: action as PolicyAction };
  if (r['fd'] !== undefined) {
    if (typeof r['fd'] !== 'number' || !Number.isInteger(r['fd']) || r['fd'] < 0)
      fail(where, 'fd must be an integer ≥ 0');
    rule.fd = r['fd'];
  }
  if (r['path'] !== undefined) {
    if (typeof r['path'] !== 'string' || r['path'] === '') fail(where, 'path must be a non-empty glob');
    if (r['path'].length > MAX_GLOB_LENGTH)
      fail(where, `path glob of ${r['path'].length} characters: at most ${MAX_GLOB_LENGTH}`);
    rule.path = r['path'];
  }
  if (r['type'] !== undefined) {
    if (typeof r['type'] !== 'string' || !isFileType(r['type']))
      fail(where, `unknown type ${JSON.stringify(r['type'])}`);
    rule.type = r['type'];
  }
  if (r['cloexec'] !== undefined) {
    if (typeof r['cloexec'] !== 'boolean') fail(where, 'cloexec must be true or false');
    rule.cloexec = r['cloexec'];
  }
  if (r['listening'] !== undefined) {
    if (typeof r['listening'] !== 'boolean') fail(where, 'listening must be true or false');
    rule.listening = r['listening'];
  }
  if (r['allowSizeChange'] !== undefined) {
    if (typeof r['allowSizeChange'] !== 'boolean') fail(where, 'allowSizeChange must be true or false');
    rule.allowSizeChange = r['allowSizeChange'];
  }
  if (r['allowFileChange'] !== undefined) {
    if (typeof r['allowFileChange'] !== 'boolean') fail(where, 'allowFileChange must be true or false');
    rule.allowFileChange = r['allowFileChange'];
  }
  if (rule.action === 'remap') {
    const from = r['from'];
    const to = r['to'];
    if (typeof from !== 'string' || !from.startsWith('/'))
      fail(where, 'remap needs `from`, an absolute path prefix');
    if (typeof to !== 'string' || !to.startsWith('/'))
      fail(where, 'remap needs `to`, an absolute path prefix');
    rule.from = from;
    rule.to = to;
  } else if (r['from'] !== undefined || r['to'] !== undefined) {
    fail(where, '`from`/`to` belong to action remap only');
  }
  return rule;
}

/** Parses a policy document (YAML or JSON): `{rules: [...]}`. Throws naming the rule and field. */
export function parsePolicy(text: string): RestorePolicy {
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch (err) {
    fail('file', `not YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { rules?: unknown }).rules)) {
    fail('file', 'must be an object with a `rules` list');
  }
  const extra = Object.keys(doc).filter((k) => k !== 'rules');
  if (extra.length > 0) fail('file', `unknown field ${JSON.stringify(extra[0])}`);
  const count = (doc as { rules: unknown[] }).rules.length;
  if (count > MAX_POLICY_RULES) fail('file', `${count} rules: at most ${MAX_POLICY_RULES}`);
  return { rules: (doc as { rules: unknown[] }).rules.map(parseRule) };
}

const globCache = new Map<string, Glob>();

/** A glob compiled once (a rule is tried against every fd); the cache is bounded as policies are. */
function compiled(glob: string): Glob {
  let g = globCache.get(glob);
  if (!g) {
    if (globCache.size >= 4 * MAX_POLICY_RULES) globCache.clear();
    g = compileGlob(glob);
    globCache.set(glob, g);
  }
  return g;
}

function underPrefix(path: string, prefix: string): boolean {
  const p = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return path === p || path.startsWith(`${p}/`);
}

function matches(rule: PolicyRule, fd: number, file: FileRecord, cloexec: boolean): boolean {
  if (rule.fd !== undefined && rule.fd !== fd) return false;
  if (rule.cloexec !== undefined && rule.cloexec !== cloexec) return false;
  if (rule.type !== undefined && rule.type !== file.type) return false;
  if (rule.listening !== undefined && rule.listening !== isListening(file)) return false;
  if (rule.path !== undefined && !compiled(rule.path).test(file.path)) return false;
  if (rule.action === 'remap' && !underPrefix(file.path, rule.from!)) return false;
  return true;
}

/** The decision for `fd` (pointing at `file`): the first matching rule, else restore-or-fail. */
export function decide(policy: RestorePolicy, fd: number, file: FileRecord, cloexec = false): FdDecision {
  const rule = policy.rules.find((r) => matches(r, fd, file, cloexec));
  const fileChange = policy.newContainer ?? false;
  if (!rule) return { action: 'fail', allowSizeChange: false, allowFileChange: fileChange, path: file.path };
  let path = file.path;
  if (rule.action === 'remap') {
    const from = rule.from!.endsWith('/') ? rule.from!.slice(0, -1) : rule.from!;
    const to = rule.to!.endsWith('/') && rule.to!.length > 1 ? rule.to!.slice(0, -1) : rule.to!;
    path = to + path.slice(from.length);
  }
  return {
    action: rule.action,
    allowSizeChange: rule.allowSizeChange ?? false,
    allowFileChange: rule.allowFileChange ?? fileChange,
    path,
  };
}
