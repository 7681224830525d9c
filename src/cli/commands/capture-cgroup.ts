/**
 * `fdckpt capture --cgroup PATH | --pod-uid UID [--container ID ...]`: freeze, capture
 * every process of the cgroup, thaw (or leave frozen, or stop), check for leaks across
 * its boundary. Loaded only for these flags, so that `capture --pid` does not load the
 * leak check and the cgroup code (CLI start-up, issue 14).
 */
// encode.js, not the folder's index: a capture needs neither the reader nor inspect and diff.
import { writeImage } from '../../agent/image/encode.js';
import { captureCgroup } from '../../agent/collect/cgroupcapture.js';
import { LeakError, describeLeak, isLeakPolicy } from '../../agent/collect/report.js';
import { EXIT, type ParsedArgs, UsageError, single } from '../command.js';
import { prepareFreezing, type CgroupTarget } from '../cgroupTarget.js';
import { parseIgnoreFd, parseIgnoreType, refuse, summaryOf } from './capture-shared.js';

export async function captureCgroupCommand(
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
