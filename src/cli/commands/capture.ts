/**
 * `fdckpt capture --pid PID [--pid PID ...] [--no-freeze] --output FILE [--json] [--ignore-type T] [--ignore-fd PID:FD]`
 * `fdckpt capture --cgroup PATH | --pod-uid UID [--container ID ...] --output FILE
 *   [--leak-policy fail|warn|ignore] [--leave-frozen | --stop] [--ignore-type T] [--ignore-fd PID:FD]`
 *
 * Records the file tables of the given processes into an image, every thread of
 * them stopped (ptrace) meanwhile unless --no-freeze. Refuses, with
 * every refused fd named on one line (exit 3), when an fd cannot be restored and is not ignored.
 * With a cgroup: freeze, capture every process in it, thaw (or leave frozen),
 * and check for leaks across its boundary; leaks refuse the capture (exit 3)
 * under the default policy fail, are printed under warn. A refusal lists every
 * reason found in the one pass: each leak and each refused fd.
 */
import { capture } from '../../agent/capture/index.js';
import { writeImage } from '../../agent/image/index.js';
import { isFileType, FILE_TYPES, type FileType } from '../../agent/model.js';
import {
  type Command,
  EXIT,
  type ParsedArgs,
  UsageError,
  intFlag,
  noPositionals,
  single,
} from '../command.js';
import type { CaptureStats, FdProblem } from '../../agent/capture/types.js';
import type { Checkpoint } from '../../agent/model.js';
import { captureCgroup } from '../../agent/collect/cgroupcapture.js';
import { LeakError, describeLeak, isLeakPolicy } from '../../agent/collect/report.js';
import { refusal } from '../problems.js';
import { cgroupTarget, prepareFreezing, type CgroupTarget } from '../cgroupTarget.js';
import { capture as spec } from '../specs.js';

const USAGE = spec.usage;

/** Every refused fd on one line (pid, fd, path, why), and exit 3: nothing was written. */
function refuse(problems: readonly FdProblem[]): number {
  process.stderr.write(`fdckpt capture: ${refusal(problems)}\n`);
  return EXIT.notCheckpointable;
}

function parseIgnoreFd(value: string): { pid: number; fd: number } {
  const m = /^(\d+):(\d+)$/.exec(value);
  if (!m) throw new UsageError(`--ignore-fd must be PID:FD, got ${JSON.stringify(value)}`);
  return { pid: Number(m[1]), fd: Number(m[2]) };
}

function parseIgnoreType(value: string): FileType {
  if (!isFileType(value))
    throw new UsageError(`--ignore-type ${value}: not a file type (${FILE_TYPES.join(', ')})`);
  return value;
}

async function run(parsed: ParsedArgs): Promise<number> {
  noPositionals(parsed, spec);
  const pids = (parsed.flags.get('pid') ?? []).map((p) => intFlag(p, 'pid'));
  const output = single(parsed, 'output');
  const cgroup = cgroupTarget(parsed, USAGE);
  if (pids.length === 0 && cgroup === undefined) {
    throw new UsageError(`--pid, --cgroup or --pod-uid is required; usage: fdckpt ${USAGE}`);
  }
  if (pids.length > 0 && cgroup !== undefined) throw new UsageError('give --pid or a cgroup, not both');
  if (!output) throw new UsageError(`--output is required; usage: fdckpt ${USAGE}`);
  const cgroupOnly =
    parsed.flags.has('leak-policy') || parsed.booleans.has('leave-frozen') || parsed.booleans.has('stop');
  if (cgroup === undefined && cgroupOnly) {
    throw new UsageError(
      '--leak-policy, --leave-frozen and --stop apply to --cgroup/--pod-uid captures only',
    );
  }
  if (cgroup !== undefined && parsed.booleans.has('no-freeze'))
    throw new UsageError('--no-freeze applies to --pid captures only');
  if (parsed.booleans.has('leave-frozen') && parsed.booleans.has('stop')) {
    throw new UsageError('give --leave-frozen or --stop, not both');
  }
  if (cgroup !== undefined) return captureCgroupCommand(cgroup, output, parsed);

  const started = process.hrtime.bigint();
  const freeze = !parsed.booleans.has('no-freeze');
  const { checkpoint, problems, stats, timings } = capture(pids, {
    ignoreTypes: (parsed.flags.get('ignore-type') ?? []).map(parseIgnoreType),
    ignoreFds: (parsed.flags.get('ignore-fd') ?? []).map(parseIgnoreFd),
    stopTasks: freeze,
  });
  if (problems.length > 0) return refuse(problems);
  const { size } = await writeImage(output, checkpoint);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const ignored = checkpoint.files.filter((f) => f.ignored).length;
  if (parsed.booleans.has('json')) {
    const summary = {
      ...summaryOf(checkpoint, stats, ms, output, size),
      frozenMs: freeze ? timings.frozenMs : null,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  }
  process.stdout.write(
    `captured ${checkpoint.processes.length} process(es), ${stats.fds} fds, ${stats.files} open files` +
      `${ignored ? ` (${ignored} ignored)` : ''} in ${ms.toFixed(1)} ms ` +
      `(${freeze ? `frozen ${timings.frozenMs.toFixed(1)} ms` : 'not frozen'}) -> ${output} (${size} bytes)\n`,
  );
  return 0;
}

/** The --json output's common part; `frozenMs` is null when nothing was frozen. */
function summaryOf(
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

async function captureCgroupCommand(
  target: CgroupTarget,
  output: string,
  parsed: ParsedArgs,
): Promise<number> {
  const path = target.path;
  const policy = single(parsed, 'leak-policy') ?? 'fail';
  if (!isLeakPolicy(policy))
    throw new UsageError(`--leak-policy must be fail, warn or ignore, got ${JSON.stringify(policy)}`);
  prepareFreezing(parsed);
  const started = process.hrtime.bigint();
  let result;
  try {
    result = await captureCgroup(path, {
      only: target.only,
      leakPolicy: policy,
      after: parsed.booleans.has('leave-frozen')
        ? 'leave-frozen'
        : parsed.booleans.has('stop')
          ? 'stop'
          : 'thaw',
      ignoreTypes: (parsed.flags.get('ignore-type') ?? []).map(parseIgnoreType),
      ignoreFds: (parsed.flags.get('ignore-fd') ?? []).map(parseIgnoreFd),
    });
  } catch (err) {
    if (!(err instanceof LeakError)) throw err;
    // Every reason at once: the leaks, and the fds that would be refused even without them.
    for (const l of err.report.leaks) process.stderr.write(`leak: ${describeLeak(l)}\n`);
    if (err.problems.length > 0) refuse(err.problems);
    process.stderr.write(
      `fdckpt capture: ${err.report.leaks.length} leak(s) across the boundary of ${path}; nothing written\n`,
    );
    return EXIT.notCheckpointable;
  }
  const { checkpoint, problems, stats, leaks, timings } = result;
  for (const l of leaks?.leaks ?? []) process.stderr.write(`warning: leak: ${describeLeak(l)}\n`);
  if (problems.length > 0) return refuse(problems);
  const { size } = await writeImage(output, checkpoint);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (parsed.booleans.has('json')) {
    const summary = {
      ...summaryOf(checkpoint, stats, ms, output, size),
      cgroup: result.cgroup.path,
      leaks: leaks?.leaks.length ?? null,
      frozenMs: timings.frozenMs,
      timings,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  }
  const frozen = parsed.booleans.has('leave-frozen')
    ? ', left frozen'
    : parsed.booleans.has('stop')
      ? ', processes stopped'
      : '';
  process.stdout.write(
    `captured ${checkpoint.processes.length} process(es), ${stats.fds} fds, ${stats.files} open files from cgroup ` +
      `${result.cgroup.path} in ${ms.toFixed(1)} ms (frozen ${timings.frozenMs.toFixed(1)} ms${frozen}; ` +
      `${leaks?.leaks.length ?? 'unchecked'} leak(s)) -> ${output} (${size} bytes)\n`,
  );
  return 0;
}

export const command: Command = { spec, run };
