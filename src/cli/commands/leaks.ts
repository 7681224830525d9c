/**
 * `fdckpt leaks --cgroup PATH | --pod-uid UID [--container ID ...] [--json] [--freeze]`
 *
 * Which objects of the cgroup's processes are referenced from outside it (or
 * the reverse). Exit 0: no leak; 3: leaks (listed); 1: could not check.
 */
import { captureCgroup } from '../../agent/collect/cgroupcapture.js';
import { describeLeak } from '../../agent/collect/report.js';
import { type Command, EXIT, type ParsedArgs, UsageError, noPositionals } from '../command.js';
import { cgroupTarget, prepareFreezing } from '../cgroupTarget.js';
import { leaks as spec } from '../specs.js';

/** Notes printed for people; --json has every one. */
const NOTES_SHOWN = 20;

const USAGE = spec.usage;

async function run(parsed: ParsedArgs): Promise<number> {
  noPositionals(parsed, spec);
  const target = cgroupTarget(parsed, USAGE);
  if (target === undefined) throw new UsageError(`--cgroup or --pod-uid is required; usage: fdckpt ${USAGE}`);
  const freeze = parsed.booleans.has('freeze');
  if (freeze) prepareFreezing(parsed);
  const { leaks } = await captureCgroup(target.path, {
    leakPolicy: 'warn',
    noFreeze: !freeze,
    only: target.only,
  });
  const report = leaks!;
  if (parsed.booleans.has('json')) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
    for (const l of report.leaks) process.stdout.write(`leak: ${describeLeak(l)}\n`);
    // Notes (shared inodes, mappings) grow with the host, not the pod: show a few.
    for (const n of report.notes.slice(0, NOTES_SHOWN))
      process.stdout.write(`note: ${describeLeak(n)}: ${n.detail}\n`);
    if (report.notes.length > NOTES_SHOWN) {
      process.stdout.write(`... ${report.notes.length - NOTES_SHOWN} more note(s); --json lists them all\n`);
    }
    const s = report.scanned;
    process.stdout.write(
      `${report.leaks.length} leak(s), ${report.notes.length} note(s); scanned ${s.processes} processes, ` +
        `${s.fds} fds in ${s.ms.toFixed(0)} ms\n`,
    );
  }
  return report.leaks.length > 0 ? EXIT.notCheckpointable : EXIT.ok;
}

export const command: Command = { spec, run };
