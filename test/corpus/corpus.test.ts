/**
 * Acceptance corpus (issue 13): real programs, driven as processes. Each is started
 * on a loopback port, serves a request, is captured with `fdckpt capture --pid`,
 * killed, restored with `fdckpt restore`'s defaults, and must serve a request again.
 * A missing program fails the test, naming it (never a skip). Results go to
 * $FDCKPT_CORPUS_OUT (default: $TMPDIR/fdckpt-corpus.json) for docs/corpus.md.
 */
import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/local/cluster/component.js';
import { fdckpt } from '../support/cli.js';
import { until } from '../support/until.js';
import { PROGRAMS, type Program } from './programs.js';

const BIN = fileURLToPath(new URL('../../bin/fdckpt.js', import.meta.url));

interface Row {
  program: string;
  captured: number;
  refused: number;
  replayed: number;
  restoreMs: number;
  command: 'saved' | 'given';
  note: string;
}
const rows: Row[] = [];
const groups: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const g of groups.splice(0)) await stopGroup(g);
  // FDCKPT_CORPUS_KEEP=1 keeps the directories (logs, images) to look at a failure.
  for (const d of dirs.splice(0))
    if (!process.env['FDCKPT_CORPUS_KEEP']) rmSync(d, { recursive: true, force: true });
});

afterAll(() => {
  const out = process.env['FDCKPT_CORPUS_OUT'] ?? join(tmpdir(), 'fdckpt-corpus.json');
  writeFileSync(out, JSON.stringify(rows, null, 2));
});

function gone(pid: number): boolean {
  return !existsSync(`/proc/${pid}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

/** Stops a process group started here: SIGTERM, then SIGKILL if it lingers; waits for its leader. */
async function stopGroup(child: ChildProcess): Promise<void> {
  const pid = child.pid!;
  const exited = child.exitCode !== null || child.signalCode !== null;
  const done = exited ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r()));
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pid, sig);
    } catch {
      // the group is gone already
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), 10_000);
  await done;
  clearTimeout(timer);
  // Workers (nginx, postgres) of the group may outlive its leader for a moment.
  signal('SIGKILL');
}

/** Starts `cmd` in its own process group with stdio on `log`. */
function startGroup(cmd: string[], log: string, cwd: string): ChildProcess {
  const fd = openSync(log, 'a');
  const child = spawn(cmd[0]!, cmd.slice(1), { detached: true, stdio: ['ignore', fd, fd], cwd });
  closeSync(fd);
  groups.push(child);
  return child;
}

async function serving(
  p: Program,
  port: number,
  dir: string,
  child: ChildProcess,
  log: string,
): Promise<string> {
  return until(`${p.name} serving on port ${port}`, async () => {
    if (child.exitCode !== null)
      throw new Error(`exited ${child.exitCode}: ${readFileSync(log, 'utf8').slice(-2000)}`);
    const answer = await p.ask(port, dir);
    return p.expect.test(answer) ? answer : undefined;
  });
}

/** "pid P fd N" of every fd a capture refused (its stderr names each). */
function refusedFds(stderr: string): { pid: number; fd: number }[] {
  return [...stderr.matchAll(/pid (\d+) fd (\d+) \(/g)].map((m) => ({ pid: Number(m[1]), fd: Number(m[2]) }));
}

function cloexec(pid: number, fd: number): boolean {
  const flags = /^flags:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0';
  return (parseInt(flags, 8) & 0o2000000) !== 0;
}

describe('acceptance corpus: capture, kill, restore with the defaults, serve', () => {
  for (const p of PROGRAMS) {
    test(
      p.name,
      async () => {
        const missing = p.needs.filter((path) => !existsSync(path));
        if (missing.length > 0) {
          throw new Error(
            `${p.name}: ${missing.join(', ')} missing: run sh scripts/ensure-corpus.sh (npm test's pretest does)`,
          );
        }
        const dir = mkdtempSync(join(tmpdir(), 'fdckpt-corpus-'));
        dirs.push(dir);
        const port = await freePort();
        p.setup?.(dir, port);
        const log = join(dir, 'server.log');
        const cmd = p.command(dir, port);
        const server = startGroup(cmd, log, dir);
        await serving(p, port, dir, server, log);
        const pids = p.pids?.(server.pid!) ?? [server.pid!];
        const main = server.pid!;
        expect(readlinkSync(`/proc/${main}/exe`)).not.toMatch(/fdckpt-hold/);

        const image = join(dir, 'image.fdimg');
        const pidArgs = pids.flatMap((pid) => ['--pid', String(pid)]);
        let cap = fdckpt('capture', ...pidArgs, '--output', image);
        let refused: { pid: number; fd: number }[] = [];
        let note = '';
        if (cap.status !== 0) {
          // What is refused must be what the default would not replay anyway (close-on-exec),
          // else the program cannot be restored by default and the corpus fails here.
          refused = refusedFds(cap.stderr);
          expect(refused.length).toBeGreaterThan(0);
          expect(refused.filter((r) => r.pid === main && !cloexec(r.pid, r.fd))).toEqual([]);
          note = `capture refuses ${refused.length} fds (${cap.stderr.includes('F_SETOWN') ? 'socketpairs with an F_SETOWN owner, ' : ''}connected sockets): captured with --ignore-fd for them`;
          cap = fdckpt(
            'capture',
            ...pidArgs,
            ...refused.flatMap((r) => ['--ignore-fd', `${r.pid}:${r.fd}`]),
            '--output',
            image,
          );
        }
        expect(cap.stderr).toBe('');
        expect(cap.status).toBe(0);
        const json = JSON.parse(fdckpt('inspect', '--json', image).stdout) as {
          processes: { pid: number; fds: unknown[] }[];
        };
        const captured = json.processes.find((x) => x.pid === main)!.fds.length;

        await stopGroup(server);
        groups.splice(groups.indexOf(server), 1);
        await until('the original gone', () => Promise.resolve(pids.every(gone) || undefined));

        const saved = fdckpt('restore', '--dry-run', '--image', image, '--pid', String(main));
        expect(saved.stderr).toBe('');
        const replayed = Number(/^restorable: (\d+) fds/.exec(saved.stdout)?.[1]);
        const given = p.rewritesTitle || p.givenCommand !== undefined;
        if (p.rewritesTitle) {
          // Restoring with the saved argv must refuse the rewritten title, not exec it.
          const r = fdckpt('restore', '--image', image, '--pid', String(main));
          expect(r.status).toBe(2);
          expect(r.stderr).toMatch(/its saved argv is a rewritten process title .*give the command after --/);
        }
        const restoreLog = join(dir, 'restored.log');
        const t0 = performance.now();
        const restored = startGroup(
          [
            process.execPath,
            BIN,
            'restore',
            '--image',
            image,
            '--pid',
            String(main),
            ...(given ? ['--', ...cmd] : []),
          ],
          restoreLog,
          dir,
        );
        const answer = await serving(p, port, dir, restored, restoreLog);
        const restoreMs = performance.now() - t0;
        expect(answer).toMatch(p.expect);
        rows.push({
          program: p.name,
          captured,
          refused: refused.length,
          replayed,
          restoreMs: Math.round(restoreMs),
          command: given ? 'given' : 'saved',
          note: [
            note,
            p.rewritesTitle ? 'saved argv is a rewritten title: refused, command given' : '',
            p.givenCommand ?? '',
          ]
            .filter(Boolean)
            .join('; '),
        });
      },
      120_000,
    );
  }
});
