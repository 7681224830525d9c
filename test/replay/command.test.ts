/**
 * The command a restore runs when none is given: real processes that rewrote their
 * title (Node's process.title pads the argv area with NULs as redis does; perl's $0
 * writes one string) are refused with what to do; a trusted argv whose argv[0] does not
 * resolve from here to the recorded /proc/PID/exe runs that executable with argv[0]
 * kept — so a multi-call binary (busybox run as `sh`) comes back as the same applet.
 */
import { afterEach, describe, expect, test } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { capture } from '../../src/agent/capture/index.js';
import { readImage, writeImage } from '../../src/agent/image/index.js';
import { commandOf } from '../../src/agent/replay/command.js';
import { waitSettled } from '../../src/agent/replay/settle.js';
import { main } from '../../src/cli/main.js';
import { until } from '../support/until.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
/** Restored processes (not our children): killed even when a test fails before it does. */
const restoredPids: number[] = [];
afterEach(async () => {
  for (const p of restoredPids.splice(0)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const c of children.splice(0)) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmpdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'replay-command-'));
  dirs.push(d);
  return d;
}

/** Starts a process, waits until its cmdline satisfies `ready`, and captures it through an image. */
async function captured(
  cmd: string,
  args: string[],
  ready: (cmdline: string, pid: number) => boolean,
  options: { cwd?: string; argv0?: string } = {},
): Promise<{
  image: string;
  proc: ReturnType<typeof capture>['checkpoint']['processes'][number];
  child: ChildProcess;
}> {
  const child = spawn(cmd, args, { stdio: 'ignore', ...options });
  children.push(child);
  const cmdline = `/proc/${child.pid}/cmdline`;
  await until('the title', () =>
    Promise.resolve(ready(fs.readFileSync(cmdline, 'utf8'), child.pid!) || undefined),
  );
  // Its dynamic loader opens and closes fds right after the exec: capture what it settles on.
  await waitSettled(child.pid!);
  const image = path.join(tmpdir(), 'img.fdimg');
  await writeImage(image, capture([child.pid!]).checkpoint);
  const proc = (await readImage(image)).processes[0]!;
  return { image, proc, child };
}

async function cliStderr(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = (chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  };
  try {
    return { code: await main(args), stderr };
  } finally {
    process.stderr.write = write;
  }
}

describe('the saved command', () => {
  test('the image records /proc/PID/exe; a plain argv is the command', async () => {
    const { proc } = await captured('sleep', ['60'], (c) => c.startsWith('sleep'));
    expect(proc.exe).toBe(fs.realpathSync('/bin/sleep'));
    expect(commandOf(proc)).toEqual({ argv: ['sleep', '60'] });
  });

  test('a title padded with empty strings (node process.title, as redis) is refused, naming exe', async () => {
    const { image, proc } = await captured(
      process.execPath,
      ['-e', 'process.title = "web *:8080"; setTimeout(() => {}, 60000)', 'pad', 'ding'],
      (c) => c.startsWith('web *:8080'),
    );
    expect(proc.argv[0]).toBe('web *:8080');
    expect(proc.argv.at(-1)).toBe('');
    const r = await cliStderr(['restore', '--image', image]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(
        `^fdckpt restore: process \\d+ \\(web \\*:8080\\): its saved argv is a rewritten process title ` +
          `\\("web \\*:8080" followed by \\d+ empty strings\\), not a command: give the command after --, ` +
          `e\\.g\\. -- ${fs.realpathSync(process.execPath).replace(/[.]/g, '\\.')} ARGS\\.\\.\\.\\n`,
      ),
    );
  });

  test('a title written as one string (perl $0) is refused', async () => {
    const { proc } = await captured('perl', ['-e', '$0 = "myserver *:1234"; sleep 60'], (c) =>
      c.startsWith('myserver'),
    );
    expect(proc.argv).toEqual(['myserver *:1234']);
    expect(() => commandOf(proc)).toThrow(/rewritten process title \("myserver \*:1234" names no program\)/);
  });

  test('an argv[0] that does not resolve from here runs the recorded executable, argv[0] kept', async () => {
    const dir = tmpdir();
    fs.copyFileSync(fs.realpathSync('/bin/sleep'), path.join(dir, 'napper'));
    fs.chmodSync(path.join(dir, 'napper'), 0o755);
    const { proc } = await captured('./napper', ['61'], (c) => c.startsWith('./napper'), { cwd: dir });
    expect(proc.argv).toEqual(['./napper', '61']);
    expect(commandOf(proc)).toEqual({ argv: ['./napper', '61'], file: path.join(dir, 'napper') });
  });
});

const BUSYBOX = '/bin/busybox';

/** The pid (not `not`) whose argv is exactly `argv`, once it has fd `fd` open. */
function findProcess(argv: readonly string[], fd: number, not: number): Promise<number> {
  const want = argv.join('\0') + '\0';
  return until(`a process ${JSON.stringify(argv)}`, () =>
    Promise.resolve(
      fs
        .readdirSync('/proc')
        .filter((n) => /^\d+$/.test(n) && Number(n) !== not)
        .map(Number)
        .find((p) => {
          try {
            return (
              fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') === want && fs.existsSync(`/proc/${p}/fd/${fd}`)
            );
          } catch {
            return false;
          }
        }),
    ),
  );
}

describe('a multi-call binary (busybox)', () => {
  /**
   * busybox started through a symlink named sh, as `argv0` (an applet, chosen by
   * argv[0]'s name), captured and killed, then restored by the CLI with its saved
   * command: the restored process must be busybox's sh again, running the script.
   */
  async function roundTrip(argv0: string): Promise<void> {
    if (!fs.existsSync(BUSYBOX))
      throw new Error(`test prerequisite missing: ${BUSYBOX} (scripts/ensure-corpus.sh installs busybox)`);
    const dir = tmpdir();
    fs.writeFileSync(path.join(dir, 'data'), 'data\n');
    spawnSync('mkfifo', [path.join(dir, 'fifo')]);
    fs.symlinkSync(fs.realpathSync(BUSYBOX), path.join(dir, 'sh'));
    // No child process: `read` on a fifo opened read-write blocks the shell itself for good.
    const script = `exec 7<${dir}/data 8<>${dir}/fifo; echo $$ >>${dir}/ran; read x <&8`;
    const { image, proc, child } = await captured(
      path.join(dir, 'sh'),
      ['-c', script],
      (c, pid) => c.startsWith(`${argv0}\0`) && fs.existsSync(`/proc/${pid}/fd/8`),
      { cwd: dir, argv0 },
    );
    expect(proc.exe).toBe(fs.realpathSync(BUSYBOX));
    expect(proc.argv).toEqual([argv0, '-c', script]);
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
    const cmd = commandOf(proc);
    const running = main(['restore', '--image', image]);
    const restored = await findProcess(proc.argv, 8, child.pid!);
    restoredPids.push(restored);
    // The shell ran the script again (a bare `busybox -c …` is no shell and runs nothing).
    await until('the restored shell ran the script', () =>
      Promise.resolve(
        fs.readFileSync(path.join(dir, 'ran'), 'utf8').split('\n').includes(String(restored)) || undefined,
      ),
    );
    const file = fs.readlinkSync(`/proc/${restored}/exe`);
    process.kill(restored, 'SIGKILL');
    expect(await running).toBe(137);
    // busybox again (not the `sh` found on PATH), and told by argv[0] which applet to be.
    expect(file).toBe(fs.realpathSync(BUSYBOX));
    expect(cmd).toEqual({ argv: proc.argv, file: fs.realpathSync(BUSYBOX) });
  }

  test('run as sh (which names another shell here): restored as busybox sh, argv[0] kept', async () => {
    // On this host `sh` is another program (dash): argv[0] alone would restore the wrong shell.
    await roundTrip('sh');
  });

  test('run as ./sh (which does not resolve from here): the same applet, not bare busybox', async () => {
    await roundTrip('./sh');
  });
});
