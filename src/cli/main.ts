/**
 * `fdckpt`: the engine on a local host, and the local control plane.
 * Each subcommand is one module in commands/; its options are declared in specs.ts,
 * so that help and usage errors never load the command's module.
 */
import { readFileSync } from 'node:fs';
import {
  type Command,
  type CommandSpec,
  EXIT,
  UsageError,
  commandHelp,
  parseArgs,
  wantsHelp,
} from './command.js';
import { SPECS } from './specs.js';

/** Loaded lazily so that `fdckpt local` does not load the syscall bindings, nor `--help` anything heavy. */
const commands: Record<string, () => Promise<Command>> = {
  capture: () => import('./commands/capture.js').then((m) => m.command),
  demo: () => import('./commands/demo.js').then((m) => m.command),
  diff: () => import('./commands/diff.js').then((m) => m.command),
  restore: () => import('./commands/restore.js').then((m) => m.command),
  inspect: () => import('./commands/inspect.js').then((m) => m.command),
  local: () => import('./commands/local.js').then((m) => m.command),
  controller: () => import('./commands/controller.js').then((m) => m.command),
  agent: () => import('./commands/agent.js').then((m) => m.command),
  leaks: () => import('./commands/leaks.js').then((m) => m.command),
  preflight: () => import('./commands/preflight.js').then((m) => m.command),
};

/** `fdckpt --help`: every command with its one line. */
export function overview(): string {
  const width = Math.max(...SPECS.map((s) => s.name.length));
  return [
    'usage: fdckpt <command> [options]     (fdckpt <command> --help for its options)',
    '',
    'commands:',
    ...SPECS.map((s) => `  ${s.name.padEnd(width)}  ${s.summary}`),
    '',
    'exit codes: 0 ok, 1 failed, 2 usage, 3 not checkpointable (see README, "Exit codes")',
    '',
  ].join('\n');
}

/** The version in package.json, read as a file: loading nothing else. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function specOf(name: string): CommandSpec | undefined {
  return SPECS.find((s) => s.name === name);
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined) {
    process.stderr.write(overview());
    return EXIT.usage;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`fdckpt ${version()}\n`);
    return EXIT.ok;
  }
  if (name === 'help' || name === '--help' || name === '-h') {
    const spec = args[0] === undefined ? undefined : specOf(args[0]);
    process.stdout.write(spec ? commandHelp(spec) : overview());
    return EXIT.ok;
  }
  const spec = specOf(name);
  const load = commands[name];
  if (!spec || !load) {
    process.stderr.write(`fdckpt: unknown command ${JSON.stringify(name)}; see fdckpt --help\n`);
    return EXIT.usage;
  }
  try {
    if (wantsHelp(args, spec)) {
      process.stdout.write(commandHelp(spec));
      return EXIT.ok;
    }
    const parsed = parseArgs(args, spec);
    return await (await load()).run(parsed);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`fdckpt ${name}: ${message.split('\n')[0]}\n`);
    return err instanceof UsageError ? EXIT.usage : EXIT.failed;
  }
}
