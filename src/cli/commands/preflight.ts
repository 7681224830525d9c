/**
 * `fdckpt preflight --cgroup PATH | --pod-uid UID [--container ID ...] [--json] [--freeze]
 *   [--ignore-type TYPE ...]`
 *
 * The migration-readiness check: every fd of the cgroup's processes classified
 * (restorable, ignored, unsupported, leaked, locked, unlinked, owned), without
 * writing an image and, unless --freeze, without stopping the pod.
 * Exit 0: ready; 3: not ready (the fds that are not are listed first); 1: could not check.
 */
import { preflightCgroup, FD_CLASSES } from '../../agent/collect/preflight.js';
import { FILE_TYPES, isFileType, type FileType } from '../../agent/model.js';
import { type Command, EXIT, type ParsedArgs, UsageError, noPositionals } from '../command.js';
import { cgroupTarget, prepareFreezing } from '../cgroupTarget.js';
import { withIgnoreHint } from '../problems.js';
import { preflight as spec } from '../specs.js';

const USAGE = spec.usage;

function parseIgnoreType(value: string): FileType {
  if (!isFileType(value))
    throw new UsageError(`--ignore-type ${value}: not a file type (${FILE_TYPES.join(', ')})`);
  return value;
}

async function run(parsed: ParsedArgs): Promise<number> {
  noPositionals(parsed, spec);
  const target = cgroupTarget(parsed, USAGE);
  if (target === undefined) throw new UsageError(`--cgroup or --pod-uid is required; usage: fdckpt ${USAGE}`);
  const freeze = parsed.booleans.has('freeze');
  if (freeze) prepareFreezing(parsed);
  const report = await preflightCgroup(target.path, {
    only: target.only,
    freeze,
    ignoreTypes: (parsed.flags.get('ignore-type') ?? []).map(parseIgnoreType),
  });
  if (parsed.booleans.has('json')) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    // Worst first, so the blocking fds are at the top.
    const order = (c: string): number => FD_CLASSES.indexOf(c as (typeof FD_CLASSES)[number]);
    const rows = [...report.fds].sort(
      (a, b) => order(a.class) - order(b.class) || a.pid - b.pid || a.fd - b.fd,
    );
    for (const v of rows) {
      const why = v.reasons.length
        ? `  ${withIgnoreHint({ message: v.reasons.join('; '), ignoreType: v.ignoreType })}`
        : '';
      process.stdout.write(`${v.class.padEnd(11)} pid ${v.pid} fd ${v.fd} ${v.type} ${v.path}${why}\n`);
    }
    const counts = FD_CLASSES.filter((c) => report.counts[c] > 0).map((c) => `${report.counts[c]} ${c}`);
    process.stdout.write(`${report.ready ? 'ready' : 'not ready'}: ${counts.join(', ') || 'no fds'}\n`);
  }
  return report.ready ? EXIT.ok : EXIT.notCheckpointable;
}

export const command: Command = { spec, run };
