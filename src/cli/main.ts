/**
 * `fdckpt`: the engine on a local host, and the local control plane.
 * Each subcommand is one module in commands/, registered here.
 */
import type { Command } from './command.js';
import { UsageError } from './command.js';

/** Loaded lazily so that `fdckpt local` does not load the syscall bindings and vice versa. */
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

function help(): string {
  return [
    'usage: fdckpt <command> [options]',
    '',
    'commands:',
    ...Object.keys(commands).map((c) => `  ${c}`),
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    const lines = [help()];
    for (const load of Object.values(commands)) lines.push(`  ${(await load()).usage}`);
    process.stdout.write(`${lines.join('\n')}\n`);
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`fdckpt: unknown command ${JSON.stringify(name)}; see fdckpt help\n`);
    return 2;
  }
  try {
    return await (await load()).run(args);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`fdckpt ${name}: ${message.split('\n')[0]}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}
