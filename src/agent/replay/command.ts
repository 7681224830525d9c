/**
 * The command to restore a captured process into, when the user gives none.
 * /proc/PID/cmdline is not the argv that was exec'd once a program rewrites its
 * process title (redis: "redis-server *:56379" followed by 40 empty strings;
 * postgres and nginx: "postgres: checkpointer", "nginx: master process …"): a
 * command built from it execs nothing, or the wrong thing. So a rewritten title
 * is refused with what to do, and a trusted argv whose argv[0] no longer resolves
 * (relative to the old cwd, a name off PATH) runs the recorded executable.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import type { ProcessRecord } from '../model.js';

/**
 * Why a saved argv is not a command, or undefined when it may be one. `found`: whether
 * argv[0] resolves to a program here.
 */
export function rewrittenTitle(argv: readonly string[], found: boolean): string | undefined {
  let blanks = 0;
  while (blanks < argv.length && argv[argv.length - 1 - blanks] === '') blanks++;
  if (blanks > 0 && blanks === argv.length) return 'it is empty strings only';
  // execve keeps every argument as its own NUL-terminated string; empty trailing ones are
  // what is left of an argv area that was overwritten with a shorter title and padded.
  if (blanks > 0) return `${JSON.stringify(argv[0])} followed by ${blanks} empty strings`;
  // A title written over argv[0] ("nginx: master process /usr/sbin/nginx -c …", perl's $0):
  // a first argument with blanks that names no program is no path anyone exec'd.
  if (!found && /\s/.test(argv[0]!)) return `${JSON.stringify(argv[0])} names no program`;
  return undefined;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether execvp(argv0) would find a program, as the launcher runs it (in `cwd`). */
function resolvable(argv0: string, cwd: string): boolean {
  if (argv0 === '') return false;
  if (argv0.includes('/')) return executable(isAbsolute(argv0) ? argv0 : join(cwd, argv0));
  return (process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin')
    .split(delimiter)
    .some((dir) => dir !== '' && executable(join(dir, argv0)));
}

/**
 * The command for `proc`: its argv when it can be trusted (argv[0] replaced by the
 * recorded executable when it does not resolve here), else an Error saying why and
 * asking for the command.
 */
export function commandOf(proc: ProcessRecord): string[] {
  const what = `process ${proc.pid} (${proc.comm})`;
  const ask = `give the command after --${proc.exe ? `, e.g. -- ${proc.exe} ARGS...` : ''}`;
  if (proc.argv.length === 0) throw new Error(`${what}: the image holds no argv: ${ask}`);
  const found = resolvable(proc.argv[0]!, process.cwd());
  const why = rewrittenTitle(proc.argv, found);
  if (why !== undefined)
    throw new Error(`${what}: its saved argv is a rewritten process title (${why}), not a command: ${ask}`);
  if (found) return [...proc.argv];
  const exe = proc.exe?.replace(/ \(deleted\)$/, '');
  if (exe !== undefined && exe === proc.exe && executable(exe)) return [exe, ...proc.argv.slice(1)];
  throw new Error(
    `${what}: argv[0] ${JSON.stringify(proc.argv[0])} is not found here` +
      `${proc.exe ? ` and its executable ${proc.exe} is not either` : ''}: ${ask}`,
  );
}
