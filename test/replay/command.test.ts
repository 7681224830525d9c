/**
 * The command a restore runs when none is given: real processes that rewrote their
 * title (Node's process.title pads the argv area with NULs as redis does; perl's $0
 * writes one string) are refused with what to do; a trusted argv whose argv[0] does not
 * resolve from here runs the recorded /proc/PID/exe.
 */
import { afterEach, describe, expect, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { capture } from '../../src/agent/capture/index.js';
import { readImage, writeImage } from '../../src/agent/image/index.js';
import { commandOf } from '../../src/agent/replay/command.js';
import { main } from '../../src/cli/main.js';
import { until } from '../support/until.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
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
  ready: (cmdline: string) => boolean,
  options: { cwd?: string; argv0?: string } = {},
): Promise<{ image: string; proc: ReturnType<typeof capture>['checkpoint']['processes'][number] }> {
  const child = spawn(cmd, args, { stdio: 'ignore', ...options });
  children.push(child);
  const cmdline = `/proc/${child.pid}/cmdline`;
  await until('the title', () => Promise.resolve(ready(fs.readFileSync(cmdline, 'utf8')) || undefined));
  const image = path.join(tmpdir(), 'img.fdimg');
  await writeImage(image, capture([child.pid!]).checkpoint);
  const proc = (await readImage(image)).processes[0]!;
  return { image, proc };
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
    expect(commandOf(proc)).toEqual(['sleep', '60']);
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

  test('an argv[0] that does not resolve from here runs the recorded executable', async () => {
    const dir = tmpdir();
    fs.copyFileSync(fs.realpathSync('/bin/sleep'), path.join(dir, 'napper'));
    fs.chmodSync(path.join(dir, 'napper'), 0o755);
    const { proc } = await captured('./napper', ['61'], (c) => c.startsWith('./napper'), { cwd: dir });
    expect(proc.argv).toEqual(['./napper', '61']);
    expect(commandOf(proc)).toEqual([path.join(dir, 'napper'), '61']);
  });
});
