/**
 * The pieces every `fdckpt` subcommand shares: its declaration (options once, driving
 * both parsing and help), the parser over Node's own `util.parseArgs`, and the exit
 * codes. This module stays light (node:util only): `--help` loads it and specs.ts, and
 * never a command's own module with the syscall bindings or the Kubernetes client.
 */
import { parseArgs as nodeParseArgs, type ParseArgsConfig } from 'node:util';

/** The exit codes of every command (README, "Exit codes"). */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  /** The pod or process cannot be checkpointed (leaks, unsupported fds), or a restore plan refused. */
  notCheckpointable: 3,
} as const;

/** One option of a command: `--name`, maybe `-x`, a string or a boolean. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  /** Repeatable: every value is kept, in order. */
  multiple?: boolean;
  /** A one-letter alias (`-n`). */
  short?: string;
  /** The value's placeholder in help (`FILE`); strings only. */
  value?: string;
  /** One line for help. */
  description: string;
}

/** What a command accepts, declared once: help is printed from it and parsing follows it. */
export interface CommandSpec {
  name: string;
  /** The program the command belongs to, in help and errors (default `fdckpt`). */
  program?: string;
  /** One line, for `fdckpt --help`. */
  summary: string;
  /** The usage line without `fdckpt ` (positionals and the option synopsis). */
  usage: string;
  options: Record<string, OptionSpec>;
  /**
   * What follows `--`: 'command' keeps it apart (restore's `-- CMD ARGS...`);
   * otherwise it joins the positionals, as getopt does (a file named `-x`).
   */
  afterDashes?: 'command';
  /** Extra lines for the command's help (exit codes, notes). */
  notes?: string[];
}

/** A command's module: its spec and what it does with the parsed arguments. */
export interface Command {
  spec: CommandSpec;
  /** Runs the command; resolves to the process exit code. */
  run(args: ParsedArgs): Promise<number>;
}

/** A usage error: printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The parsed command line. */
export interface ParsedArgs {
  /** String options, each value in order (one unless the option is `multiple`). */
  flags: Map<string, string[]>;
  /** Boolean options given. */
  booleans: Set<string>;
  positional: string[];
  /** What follows `--` when the spec keeps it apart (afterDashes: 'command'). */
  rest: string[];
}

const HELP: OptionSpec = { type: 'boolean', short: 'h', description: 'show this help and exit' };

function nodeOptions(spec: CommandSpec): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, o] of Object.entries({ ...spec.options, help: HELP })) {
    options[name] = {
      type: o.type,
      ...(o.multiple ? { multiple: true } : {}),
      ...(o.short ? { short: o.short } : {}),
    };
  }
  return options;
}

/** Whether the command line asks for help (`--help` or `-h` before any `--`). */
export function wantsHelp(args: readonly string[], spec: CommandSpec): boolean {
  // Not strict: `--help` wins over an unknown option next to it. Options are read as
  // the spec declares them, so a value that happens to be `-h` is still a value.
  const { tokens } = nodeParseArgs({
    args: [...args],
    options: nodeOptions(spec),
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  return tokens.some((t) => t.kind === 'option' && t.name === 'help');
}

/** Turns util.parseArgs' multi-line errors into one line that says what to do. */
function usageErrorOf(err: unknown, spec: CommandSpec): UsageError {
  const e = err as { code?: string; message?: string };
  const first = (e.message ?? String(err)).split('\n')[0]!;
  const see = `see ${spec.program ?? 'fdckpt'} ${spec.name} --help`;
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const option = /'([^']+)'/.exec(first)?.[1] ?? first;
    return new UsageError(`unknown option ${option}; ${see}`);
  }
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const option = /'(--?[\w-]+)/.exec(first)?.[1] ?? '';
    if (/argument is ambiguous/.test(first))
      return new UsageError(`${option} needs a value (a value starting with - is written ${option}=-VALUE)`);
    if (/argument missing/.test(first)) return new UsageError(`${option} needs a value`);
    if (/does not take an argument/.test(first)) return new UsageError(`${option} takes no value`);
  }
  return new UsageError(`${first}; ${see}`);
}

/**
 * Parses `args` as `spec` declares: unknown options are refused (the argument after
 * one is not taken as its value), a string option given twice is refused unless
 * it is `multiple`, `--` ends options.
 */
export function parseArgs(args: readonly string[], spec: CommandSpec): ParsedArgs {
  let parsed;
  try {
    parsed = nodeParseArgs({
      args: [...args],
      options: nodeOptions(spec),
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
  } catch (err) {
    throw usageErrorOf(err, spec);
  }
  const flags = new Map<string, string[]>();
  const booleans = new Set<string>();
  const positional: string[] = [];
  const rest: string[] = [];
  let afterDashes = false;
  for (const t of parsed.tokens) {
    if (t.kind === 'option-terminator') afterDashes = true;
    else if (t.kind === 'positional')
      (afterDashes && spec.afterDashes === 'command' ? rest : positional).push(t.value);
    else if (t.value === undefined) booleans.add(t.name);
    else {
      const values = flags.get(t.name) ?? [];
      if (values.length > 0 && !spec.options[t.name]?.multiple)
        throw new UsageError(`--${t.name} given more than once`);
      values.push(t.value);
      flags.set(t.name, values);
    }
  }
  return { flags, booleans, positional, rest };
}

/** The single value of a string option, or undefined. */
export function single(parsed: ParsedArgs, name: string): string | undefined {
  return parsed.flags.get(name)?.[0];
}

/** A flag that must be a non-negative integer. */
export function intFlag(value: string, name: string): number {
  if (!/^\d+$/.test(value))
    throw new UsageError(`--${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** Refuses positionals beyond what the command takes. */
export function noPositionals(parsed: ParsedArgs, spec: CommandSpec): void {
  if (parsed.positional.length > 0)
    throw new UsageError(
      `unexpected argument ${JSON.stringify(parsed.positional[0])}; usage: ${spec.program ?? 'fdckpt'} ${spec.usage}`,
    );
}

/** `fdckpt NAME --help`: the usage line, the summary, each option with its description. */
export function commandHelp(spec: CommandSpec): string {
  const rows = Object.entries({ ...spec.options, help: HELP }).map(([name, o]) => {
    const left = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    return { left, right: `${o.description}${o.multiple ? ' (repeatable)' : ''}` };
  });
  const width = Math.min(34, Math.max(...rows.map((r) => r.left.length)));
  const lines = [`usage: ${spec.program ?? 'fdckpt'} ${spec.usage}`, '', spec.summary, '', 'options:'];
  for (const r of rows) {
    lines.push(
      r.left.length > width
        ? `  ${r.left}\n  ${' '.repeat(width)}  ${r.right}`
        : `  ${r.left.padEnd(width)}  ${r.right}`,
    );
  }
  if (spec.notes?.length) lines.push('', ...spec.notes);
  return `${lines.join('\n')}\n`;
}
