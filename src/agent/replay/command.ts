/**
 * The command to restore a captured process into, when the user gives none.
 * /proc/PID/cmdline is not the argv that was exec'd once a program rewrites its
 * process title (redis: "redis-server *:56379" followed by 40 empty strings;
 * postgres and nginx: "postgres: checkpointer", "nginx: master process …"): a
 * command built from it execs nothing, or the wrong thing. So a rewritten title
 * is refused with what to do. A trusted argv runs as it was exec'd: the recorded
 * executable (/proc/PID/exe) with argv[0] kept, unless argv[0] resolves here to that
 * same file anyway. argv[0] alone may name another program here or none (relative
 * to the old cwd, a name off PATH), and the executable alone is not the program
 * either when it is a multi-call binary: busybox run as `sh` picks its applet by
 * argv[0]'s name, and run as `busybox -c …` it is no shell at all.
 */
import { accessSync, constants, realpathSync } from 'node:fs';
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

/** The file execvp(argv0) would run, as the launcher runs it (in `cwd`), or undefined. */
function resolve(argv0: string, cwd: string): string | undefined {
  if (argv0 === '') return undefined;
  if (argv0.includes('/')) {
    const file = isAbsolute(argv0) ? argv0 : join(cwd, argv0);
    return executable(file) ? file : undefined;
  }
  return (process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin')
    .split(delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, argv0))
    .find(executable);
}

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** A command to restore into: `argv` as the program gets it, exec'd from `file` when given. */
export interface SavedCommand {
  argv: string[];
  /** The file to exec when it is not what argv[0] resolves to (fdckpt-hold --exec). */
  file?: string;
}

/**
 * The command for `proc`: its argv when it can be trusted, exec'd from the recorded
 * executable when argv[0] does not resolve here to that same file; else an Error
 * saying why and asking for the command.
 */
export function commandOf(proc: ProcessRecord): SavedCommand {
  const what = `process ${proc.pid} (${proc.comm})`;
  const ask = `give the command after --${proc.exe ? `, e.g. -- ${proc.exe} ARGS...` : ''}`;
  if (proc.argv.length === 0) throw new Error(`${what}: the image holds no argv: ${ask}`);
  const found = resolve(proc.argv[0]!, process.cwd());
  const why = rewrittenTitle(proc.argv, found !== undefined);
  if (why !== undefined)
    throw new Error(`${what}: its saved argv is a rewritten process title (${why}), not a command: ${ask}`);
  // A "(deleted)" executable was replaced or removed since: no file to run as it was.
  const exe = proc.exe !== undefined && !proc.exe.endsWith(' (deleted)') ? proc.exe : undefined;
  if (found !== undefined && (exe === undefined || sameFile(found, exe))) return { argv: [...proc.argv] };
  if (exe !== undefined && executable(exe)) return { argv: [...proc.argv], file: exe };
  if (found !== undefined) return { argv: [...proc.argv] };
  throw new Error(
    `${what}: argv[0] ${JSON.stringify(proc.argv[0])} is not found here` +
      `${proc.exe ? ` and its executable ${proc.exe} is not either` : ''}: ${ask}`,
  );
}
