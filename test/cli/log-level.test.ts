/**
 * The components' JSON logs and `--log-level`: the logger factory's lines carry
 * level, time, component and msg, and drop what is below the level; the real, built
 * `fdckpt controller` logs its debug lines only at `--log-level debug` (or
 * FDCKPT_LOG_LEVEL=debug), and refuses an unknown level as a usage error.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from '@jest/globals';
import { jsonLogger, resolveLogLevel } from '../../src/kube/log.js';
import { fdckpt } from '../support/cli.js';

const bin = fileURLToPath(new URL('../../bin/fdckpt.js', import.meta.url));

function parsed(lines: string[]): Record<string, unknown>[] {
  return lines
    .join('')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('jsonLogger', () => {
  test('one JSON line per entry with level, time, component, msg and the fields', () => {
    const lines: string[] = [];
    const log = jsonLogger('agent node-1', { level: 'debug', write: (l) => lines.push(l) });
    log.debug('looking', { key: 'ns/a' });
    log.error('failed', { attempt: 2 });
    const [debug, error] = parsed(lines);
    expect(debug).toMatchObject({ level: 'debug', component: 'agent node-1', msg: 'looking', key: 'ns/a' });
    expect(error).toMatchObject({ level: 'error', component: 'agent node-1', msg: 'failed', attempt: 2 });
    expect(new Date(String(debug!['time'])).toISOString()).toBe(debug!['time']);
  });

  test('entries below the level are dropped; info is the default', () => {
    const lines: string[] = [];
    const info = jsonLogger('controller', { write: (l) => lines.push(l) });
    info.debug('hidden');
    info.info('shown');
    const warn = jsonLogger('controller', { level: 'warn', write: (l) => lines.push(l) });
    warn.info('hidden too');
    warn.warn('shown too');
    expect(parsed(lines).map((e) => e['msg'])).toEqual(['shown', 'shown too']);
  });

  test('the flag wins over FDCKPT_LOG_LEVEL; an unknown level is refused', () => {
    expect(resolveLogLevel(undefined, {})).toBe('info');
    expect(resolveLogLevel(undefined, { FDCKPT_LOG_LEVEL: 'debug' })).toBe('debug');
    expect(resolveLogLevel('error', { FDCKPT_LOG_LEVEL: 'debug' })).toBe('error');
    expect(() => resolveLogLevel('verbose', {})).toThrow(
      '--log-level "verbose": use one of debug, info, warn, error',
    );
  });
});

describe('fdckpt controller --log-level', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fdckpt-log-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // Nothing listens there: the command logs its start-up before any request answers.
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: c, cluster: {server: "http://127.0.0.1:9"}}]',
      'users: [{name: u, user: {token: t}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
    ].join('\n'),
  );

  /** The controller's stderr lines up to its "serving" line; then it is stopped. */
  function startUp(flags: string[], env: NodeJS.ProcessEnv = {}): Promise<Record<string, unknown>[]> {
    const args = [bin, 'controller', '--kubeconfig', kubeconfig, '--no-leader-elect', '--port', '0'];
    const child = spawn(process.execPath, [...args, '--launcher-image', 'x', ...flags], {
      env: { ...process.env, FDCKPT_LOG_LEVEL: '', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    return new Promise((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (!err.includes('serving health and metrics')) return;
        child.kill('SIGKILL');
        resolve(
          err
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as Record<string, unknown>),
        );
      });
      child.on('exit', (code) => reject(new Error(`controller exited (${code}) before serving: ${err}`)));
    });
  }

  test('debug lines only at debug; every line is JSON with level, time, component, msg', async () => {
    fdckpt('--help'); // fails with a clear message when dist/ is missing
    const debug = await startUp(['--log-level', 'debug']);
    const info = await startUp([]);
    const fromEnv = await startUp([], { FDCKPT_LOG_LEVEL: 'debug' });
    for (const e of [...debug, ...info, ...fromEnv]) {
      expect(Object.keys(e)).toEqual(expect.arrayContaining(['level', 'time', 'component', 'msg']));
      expect(e['component']).toBe('controller');
    }
    const configuration = { level: 'debug', msg: 'configuration', launcherImage: 'x' };
    expect(debug).toContainEqual(expect.objectContaining(configuration));
    expect(fromEnv).toContainEqual(expect.objectContaining(configuration));
    expect(info.filter((e) => e['level'] === 'debug')).toEqual([]);
    expect(info).toContainEqual(expect.objectContaining({ level: 'info' }));
  });

  test('an unknown level is a usage error', () => {
    const r = fdckpt('controller', '--launcher-image', 'x', '--log-level', 'loud');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--log-level "loud": use one of debug, info, warn, error');
  });
});
