/** A subcommand of the `fdckpt` CLI: one module per command under commands/. */
export interface Command {
  name: string;
  /** One-line usage, shown by `fdckpt help`. */
  usage: string;
  /** Runs the command; resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}

/** A usage error: printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Minimal flag parser: `--name value`, repeated flags collect, `--flag` booleans, `--` ends flags. */
export interface ParsedArgs {
  flags: Map<string, string[]>;
  booleans: Set<string>;
  positional: string[];
  /** Everything after `--`. */
  rest: string[];
}

export function parseArgs(args: string[], booleanFlags: readonly string[] = []): ParsedArgs {
  const flags = new Map<string, string[]>();
  const booleans = new Set<string>();
  const positional: string[] = [];
  let rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      rest = args.slice(i + 1);
      break;
    }
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    if (booleanFlags.includes(name)) {
      booleans.add(name);
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    const list = flags.get(name) ?? [];
    list.push(value);
    flags.set(name, list);
  }
  return { flags, booleans, positional, rest };
}

/** The single value of a flag, or undefined; more than one is a usage error. */
export function single(parsed: ParsedArgs, name: string): string | undefined {
  const values = parsed.flags.get(name);
  if (!values) return undefined;
  if (values.length > 1) throw new UsageError(`--${name} given more than once`);
  return values[0];
}

/** A flag that must be a positive integer. */
export function intFlag(value: string, name: string): number {
  if (!/^\d+$/.test(value))
    throw new UsageError(`--${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return Number(value);
}
