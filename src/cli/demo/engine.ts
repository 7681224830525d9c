/**
 * Part 1 of `fdckpt demo`: the engine end to end on this host, no cluster.
 * A small program builds an fd table (a config file read up to offset 10 and
 * a dup of it, an append-only log, its stdout in a file), fdckpt captures it,
 * shows the image, kills the program, restores the table into a new program,
 * captures that one and diffs it with the original, then restores once more
 * into a shell that proves it reads on from offset 10 through the dup'ed fd.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { capture } from '../../agent/capture/index.js';
import {
  diffCheckpoints,
  readImage,
  renderDiff,
  renderInspectTable,
  writeImage,
} from '../../agent/image/index.js';
import { restore, waitSettled } from '../../agent/replay/index.js';

/** Opens fds with redirections, reads one line (fd 3's offset moves to 10), then waits. */
const ORIGINAL = `
exec 3< "$D/config.txt" 4>> "$D/app.log" 9<&3 1> "$D/out.txt"
read -r first <&3
echo "original: read '$first' through fd 3" >&4
exec sleep 600
`;

/** Runs with the restored table: reads on through fd 9 (shares fd 3's offset), appends to fd 4. */
const RESTORED = `
read -r next <&9
echo "restored: read '$next' through fd 9 (offset kept, shared with fd 3)" >&4
`;

/** Waits until `pid` has exec'd `comm`: its fd table is complete from then on. */
async function waitForExec(pid: number, comm: string): Promise<void> {
  for (let waited = 0; waited < 10_000; waited += 20) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm) return;
    } catch {
      break;
    }
    await sleep(20);
  }
  throw new Error(`the demo program (pid ${pid}) did not start`);
}

/** Runs the engine demo, printing through `say`; resolves to 0 when the round trip held. */
export async function engineDemo(say: (line?: string) => void): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'fdckpt-demo-'));
  writeFileSync(join(dir, 'config.txt'), 'mode=demo\nlevel=3\n');
  const env = { ...process.env, D: dir };
  // The program's stdio is its own (files), not ours: a caller's socket or tty would be refused.
  const errLog = openSync(join(dir, 'stderr.log'), 'w');
  const original = spawn('sh', ['-c', ORIGINAL], { env, stdio: ['ignore', 'ignore', errLog] });
  closeSync(errLog);
  try {
    const pid = original.pid!;
    await waitForExec(pid, 'sleep');
    say(`1. a program (pid ${pid}) opened config.txt as fds 3 and 9, app.log as fd 4, out.txt as fd 1`);
    const { checkpoint, problems, stats } = capture([pid], { source: 'demo' });
    if (problems.length > 0) throw new Error(problems.map((p) => p.message).join('; '));
    const image = join(dir, 'demo.fdimg');
    await writeImage(image, checkpoint);
    say(`2. fdckpt captured ${stats.fds} fds (${stats.files} open files) into ${image}:`);
    say(renderInspectTable(await readImage(image)).trimEnd());
    original.kill('SIGKILL');
    say('3. the program is killed; its table is restored into a new program, which fdckpt captures again:');
    const copy = await restore(await readImage(image), ['sleep', '600'], { stdio: 'ignore' });
    await waitSettled(copy.pid); // past the dynamic loader's own opens and closes
    const recaptured = capture([copy.pid], { source: 'demo restored' }).checkpoint;
    process.kill(copy.pid, 'SIGKILL'); // the restored program; its waiter then exits
    await copy.exit;
    const diffs = diffCheckpoints(checkpoint, recaptured);
    say(
      `   ${copy.stats.steps} syscalls injected in ${copy.timings.inject.toFixed(1)} ms; fdckpt diff original restored:`,
    );
    say(
      `   ${diffs.length === 0 ? 'no difference in fd numbers, flags, offsets, close-on-exec or sharing' : renderDiff(diffs)}`,
    );
    say('4. restored again into a shell that reads on through fd 9 and appends to fd 4:');
    const restored = await restore(await readImage(image), ['sh', '-c', RESTORED], { stdio: 'ignore' });
    const status = await restored.exit;
    say(`   it exited ${status}; app.log now says:`);
    say(readFileSync(join(dir, 'app.log'), 'utf8').trimEnd().replace(/^/gm, '   '));
    if (diffs.length > 0) return 1;
    return status;
  } finally {
    original.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
