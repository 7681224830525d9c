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
// encode.js, not the folder's index: a capture needs neither the reader nor inspect and diff.
import { writeImage } from '../../agent/image/encode.js';
import { type Command, type ParsedArgs, UsageError, intFlag, noPositionals, single } from '../command.js';
import { capture as spec } from '../specs.js';
import { parseIgnoreFd, parseIgnoreType, refuse, summaryOf } from './capture-shared.js';

const USAGE = spec.usage;

async function run(parsed: ParsedArgs): Promise<number> {
  noPositionals(parsed, spec);
  const pids = (parsed.flags.get('pid') ?? []).map((p) => intFlag(p, 'pid'));
  const output = single(parsed, 'output');
  // The cgroup code and the leak check load only when a cgroup is named.
  const named = ['cgroup', 'pod-uid', 'container'].some((f) => parsed.flags.has(f));
  const cgroup = named ? (await import('../cgroupTarget.js')).cgroupTarget(parsed, USAGE) : undefined;
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
  if (cgroup !== undefined)
    return (await import('./capture-cgroup.js')).captureCgroupCommand(cgroup, output, parsed);

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

export const command: Command = { spec, run };
