/**
 * What `fdckpt capture`'s two forms share (commands/capture.ts for --pid,
 * commands/capture-cgroup.ts for a cgroup): parsing the ignores, the refusal line,
 * the --json summary.
 */
import { isFileType, FILE_TYPES, type FileType } from '../../agent/model.js';
import type { CaptureStats, FdProblem } from '../../agent/capture/types.js';
import type { Checkpoint } from '../../agent/model.js';
import { EXIT, UsageError } from '../command.js';
import { refusal } from '../problems.js';

/** Every refused fd on one line (pid, fd, path, why), and exit 3: nothing was written. */
export function refuse(problems: readonly FdProblem[]): number {
  process.stderr.write(`fdckpt capture: ${refusal(problems)}\n`);
  return EXIT.notCheckpointable;
}

export function parseIgnoreFd(value: string): { pid: number; fd: number } {
  const m = /^(\d+):(\d+)$/.exec(value);
  if (!m) throw new UsageError(`--ignore-fd must be PID:FD, got ${JSON.stringify(value)}`);
  return { pid: Number(m[1]), fd: Number(m[2]) };
}

export function parseIgnoreType(value: string): FileType {
  if (!isFileType(value))
    throw new UsageError(`--ignore-type ${value}: not a file type (${FILE_TYPES.join(', ')})`);
  return value;
}

/** The --json output's common part; `frozenMs` is null when nothing was frozen. */
export function summaryOf(
  checkpoint: Checkpoint,
  stats: CaptureStats,
  ms: number,
  output: string,
  bytes: number,
): Record<string, unknown> {
  return {
    processes: checkpoint.processes.length,
    fds: stats.fds,
    files: stats.files,
    ignored: checkpoint.files.filter((f) => f.ignored).length,
    ms,
    output,
    bytes,
  };
}
