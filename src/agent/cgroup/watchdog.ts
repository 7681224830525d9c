/**
 * The thaw watchdog: a separate process, started before a freeze, that thaws
 * the cgroup on a deadline whatever the freezer is doing. The capturing thread
 * can be stuck in a syscall that waits on the frozen pod (a FUSE server inside
 * it) where no timer, signal handler or `finally` of its own can run; a
 * process of its own still can. It also outlives a SIGKILLed freezer.
 *
 * On its deadline it moves the journal entry aside, writes the thaw, and
 * removes the entry: the freezer, if it ever resumes, sees the entry gone and
 * knows its work ran on a thawed pod (freeze.ts watchdogFired()).
 */
import { spawn, type ChildProcess } from 'node:child_process';

/**
 * The watchdog's program (run with `node -e`, so that it needs no file of its
 * own next to the build): argv = file, value, deadline ms, journal entry.
 * It ignores SIGTERM/SIGINT/SIGHUP sent to the freezer's process group: only
 * its deadline or an explicit SIGKILL from the freezer ends it.
 */
const PROGRAM = `
const fs = require('node:fs');
const [file, value, ms, entry] = process.argv.slice(1);
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(s, () => {});
setTimeout(() => {
  // The entry moves aside before the thaw: a freezer that wakes up on the thaw must
  // already see it gone. Still a .json entry, so a crash here leaves it to thawOrphans.
  const fired = entry.slice(0, -'.json'.length) + '.fired.json';
  try { fs.renameSync(entry, fired); } catch {}
  try { fs.writeFileSync(file, value); } catch {}
  try { fs.rmSync(fired, { force: true }); } catch {}
  process.exit(0);
}, Number(ms));
`;

/** A running watchdog. */
export interface Watchdog {
  /** Ends it before its deadline (the freezer thawed or handed over). */
  cancel(): void;
}

/** Default deadline: a freeze window is milliseconds; 30 s means something is stuck. */
export const DEFAULT_WATCHDOG_MS = 30_000;

/** Starts a watchdog that writes `value` to `file` after `ms` and removes `journalEntry`. */
export function startWatchdog(file: string, value: string, ms: number, journalEntry: string): Watchdog {
  // detached: its own process group, so a signal to ours (Ctrl-C) does not end it first.
  const child: ChildProcess = spawn(
    process.execPath,
    ['-e', PROGRAM, file, value, String(ms), journalEntry],
    {
      detached: true,
      stdio: 'ignore',
    },
  );
  child.unref();
  return {
    cancel: (): void => {
      // ChildProcess.kill does nothing once it has exited and been reaped: no stray pid is hit.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
