/**
 * `fdckpt restore --image FILE [--pid PID] [--fds program|inherited|all]
 *  [--policy FILE] [--no-batch] [--timeout SECONDS] [-- CMD [ARGS...]]`
 *
 * --fds (default program): which fds are replayed before the policy's own rules
 * (docs/replay.md, "What is replayed"): program keeps CMD's own fds 0–2 and leaves
 * close-on-exec fds and listening sockets closed, so an unmodified program works.
 * --listen-fds: socket handoff — the saved listening sockets go to fds 3… with
 * LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES set, as socket activation expects.
 *
 * Starts CMD (default: the saved argv of the process, exec'd from its recorded
 * executable with argv[0] kept when argv[0] names another file here) with the file table of
 * process PID from the image (default: its first process) replayed into it, runs it in the foreground and exits with its
 * exit status (128+N when it is killed by signal N). Any restore failure kills
 * CMD before it runs a single instruction and exits 1 naming the fd.
 * --dry-run: only the checks made before anything starts (exit 0: restorable).
 */
import { readFileSync } from 'node:fs';
import type { Checkpoint } from '../../agent/model.js';
import type { SavedCommand } from '../../agent/replay/command.js';
import { type Command, EXIT, type ParsedArgs, UsageError, intFlag, single } from '../command.js';
import { restore as spec } from '../specs.js';

/** Signals the CLI passes on to the restored program while it runs in the foreground. */
const FORWARDED = ['SIGTERM', 'SIGHUP'] as const;

/** The saved command of the process (replay/command.ts: never a rewritten process title). */
async function savedCommand(cp: Checkpoint, pid: number | undefined): Promise<SavedCommand> {
  const proc = pid === undefined ? cp.processes[0] : cp.processes.find((p) => p.pid === pid);
  if (!proc) throw new UsageError('the image holds no such process: give --pid or the command after --');
  const { commandOf } = await import('../../agent/replay/command.js');
  try {
    return commandOf(proc);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export const command: Command = {
  spec,
  async run(parsed: ParsedArgs): Promise<number> {
    const image = single(parsed, 'image');
    if (!image) throw new UsageError('--image FILE is required');
    if (parsed.positional.length > 0)
      throw new UsageError(
        `unexpected argument ${JSON.stringify(parsed.positional[0])} (the command goes after --)`,
      );
    const pidFlag = single(parsed, 'pid');
    const timeoutFlag = single(parsed, 'timeout');
    const policyFile = single(parsed, 'policy');
    // Loaded here so that `fdckpt help` does not load the syscall bindings.
    const { readImage } = await import('../../agent/image/index.js');
    const {
      restore,
      planRestore,
      stdioStartedWith,
      parsePolicy,
      replayPolicy,
      handOff,
      DEFAULT_POLICY,
      REPLAY_MODES,
      ReplayError,
    } = await import('../../agent/replay/index.js');
    const listenFds = parsed.booleans.has('listen-fds');
    const mode = single(parsed, 'fds') ?? 'program';
    if (!(REPLAY_MODES as readonly string[]).includes(mode))
      throw new UsageError(`--fds must be one of ${REPLAY_MODES.join(', ')}, got ${JSON.stringify(mode)}`);
    let policy = DEFAULT_POLICY;
    if (policyFile) {
      let text: string;
      try {
        text = readFileSync(policyFile, 'utf8');
      } catch (err) {
        throw new Error(`policy ${policyFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      policy = parsePolicy(text);
    }
    policy = replayPolicy(mode as (typeof REPLAY_MODES)[number], policy, { listenFds });
    const pid = pidFlag === undefined ? undefined : intFlag(pidFlag, 'pid');
    // Only what this process's table needs is decoded (a sixth of a six-process image);
    // the rest is still framed and checksummed (image/select.ts).
    const cp = await readImage(image, { only: pid === undefined ? {} : { pid } });
    const timeoutSeconds = timeoutFlag === undefined ? undefined : intFlag(timeoutFlag, 'timeout');
    const cmd: SavedCommand =
      parsed.booleans.has('dry-run') || parsed.rest.length > 0
        ? { argv: parsed.rest }
        : await savedCommand(cp, pid);
    let restored;
    try {
      if (parsed.booleans.has('dry-run')) {
        // Every check restore makes before starting anything, and nothing else.
        const plan = planRestore(
          listenFds ? handOff(cp, policy, pid).cp : cp,
          policy,
          pid,
          undefined,
          stdioStartedWith('inherit'),
        );
        process.stdout.write(`restorable: ${plan.fds} fds, ${plan.count} syscalls\n`);
        return EXIT.ok;
      }
      restored = await restore(cp, cmd.argv, {
        ...(cmd.file === undefined ? {} : { file: cmd.file }),
        stdio: 'inherit',
        policy,
        batch: !parsed.booleans.has('no-batch'),
        listenFds,
        ...(pid === undefined ? {} : { pid }),
        ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
      });
    } catch (err) {
      // A ReplayError without a target pid came from the checks and the plan, before
      // anything started: the image is refused (exit 3), as a capture refuses an fd.
      if (!(err instanceof ReplayError) || err.targetPid !== undefined) throw err;
      process.stderr.write(`fdckpt restore: ${(err as Error).message.split('\n')[0]}\n`);
      return EXIT.notCheckpointable;
    }
    // Terminal signals (Ctrl-C) reach the program through its process group; the
    // CLI stays alive to report the status. Targeted signals are passed on.
    const forward = (signal: NodeJS.Signals): void => void restored.waiter.kill(signal);
    const ignore = (): void => undefined;
    process.on('SIGINT', ignore);
    for (const s of FORWARDED) process.on(s, forward);
    try {
      return await restored.exit;
    } finally {
      process.off('SIGINT', ignore);
      for (const s of FORWARDED) process.off(s, forward);
    }
  },
};
