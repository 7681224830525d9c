/**
 * `kubectl fdckpt` as a user runs it: the real kubectl (built with the control plane)
 * finds bin/kubectl-fdckpt.js on PATH and runs it against the harness's real
 * kube-apiserver, with the real controller reconciling the Checkpoints it creates. The
 * test plays the node's agent (writes what it would into status, as the reconciler tests
 * do); Migrations, whose controller needs nodes and agents, get their terminal status
 * from the test as the controller would write it.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as yaml from 'js-yaml';
import { setCondition, type Checkpoint, type ConditionInput, type Migration } from '../../src/api/index.js';
import { startController } from '../../src/controller/manager.js';
import { silentLogger } from '../../src/kube/log.js';
import { KUBECTL, describeWithKubectl } from '../support/kubectl.js';
import { until } from '../support/until.js';
import { installCrds, makePod, startHarness, type Harness } from '../controller/support.js';

const plugin = fileURLToPath(new URL('../../bin/kubectl-fdckpt.js', import.meta.url));
const dist = fileURLToPath(new URL('../../dist/cli/kubectl/plugin.js', import.meta.url));
const describeKubectl = describeWithKubectl('kubectl-plugin.test');

let h: Harness;
let controller: { stop(): Promise<void> };
let work: string;
/** The admin kubeconfig with its context's namespace set to `team`. */
let teamKubeconfig: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `kubectl fdckpt ARGS` with the plugin on PATH and KUBECONFIG set, as a user's shell has them. */
function kubectlFdckpt(args: string[], kubeconfig = h.cluster.adminKubeconfig): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      KUBECTL,
      ['fdckpt', ...args],
      {
        encoding: 'utf8',
        timeout: 120_000,
        env: {
          ...process.env,
          // The plugin's `#!/usr/bin/env node` finds this node first.
          PATH: `${join(work, 'bin')}:${dirname(process.execPath)}:${process.env['PATH'] ?? ''}`,
          KUBECONFIG: kubeconfig,
        },
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function checkpointsOf(pod: string, namespace = 'default'): Promise<Checkpoint[]> {
  const list = (await h.custom.listNamespacedCustomObject({
    group: 'fdckpt.io',
    version: 'v1alpha1',
    namespace,
    plural: 'checkpoints',
  })) as { items: Checkpoint[] };
  return list.items.filter((c) => c.spec.podName === pod);
}

/** Writes `status` over the Checkpoint's, as the node's agent does, retrying on the controller's writes. */
async function agentWrites(
  name: string,
  status: Omit<NonNullable<Checkpoint['status']>, 'conditions'> & { conditions?: ConditionInput[] },
): Promise<void> {
  for (;;) {
    const c = await h.checkpoints.get('default', name);
    let conditions = c.status?.conditions;
    for (const cond of status.conditions ?? []) conditions = setCondition(conditions, cond);
    try {
      await h.checkpoints.replaceStatus({ ...c, status: { ...c.status, ...status, conditions } });
      return;
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
    }
  }
}

/** The one Checkpoint the plugin created for `pod`, once the real controller has scheduled it. */
async function scheduled(pod: string): Promise<Checkpoint> {
  return until(`the controller schedules the Checkpoint of ${pod}`, async () => {
    const [c] = await checkpointsOf(pod);
    return c?.status?.phase === 'Scheduled' ? c : undefined;
  });
}

beforeAll(async () => {
  if (!existsSync(dist)) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  h = await startHarness();
  await installCrds(h.kc, ['migrations.fdckpt.io.yaml']);
  controller = await startController({ kc: h.kc, log: silentLogger, port: 0, launcher: { image: 'x' } });
  work = mkdtempSync(join(tmpdir(), 'fdckpt-plugin-'));
  mkdirSync(join(work, 'bin'));
  symlinkSync(plugin, join(work, 'bin', 'kubectl-fdckpt'));
  const kubeconfig = yaml.load(readFileSync(h.cluster.adminKubeconfig, 'utf8')) as {
    contexts: { context: { namespace?: string } }[];
  };
  for (const c of kubeconfig.contexts) c.context.namespace = 'team';
  teamKubeconfig = join(work, 'team.kubeconfig');
  writeFileSync(teamKubeconfig, yaml.dump(kubeconfig));
  await h.core.createNamespace({ body: { metadata: { name: 'team' } } });
  await makePod(h, 'web', { node: 'node-a', phase: 'Running' });
}, 180_000);

afterAll(async () => {
  await controller?.stop();
  await h?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describeKubectl('kubectl fdckpt', () => {
  test('checkpoint pod/NAME creates the Checkpoint, waits for Ready and prints it', async () => {
    const run = kubectlFdckpt(['checkpoint', 'pod/web']);
    const c = await scheduled('web');
    expect(c.metadata.name).toMatch(/^web-\w+$/);
    expect(c.spec).toEqual({ podName: 'web' });
    await agentWrites(c.metadata.name!, {
      totalFds: 4,
      totalProcesses: 1,
      image: { node: 'node-a', path: '/var/lib/fdckpt/images/x.fdimg', size: 100, sha256: '0'.repeat(64) },
      conditions: [
        { type: 'Captured', status: 'True', reason: 'Captured', message: '4 fds in 1 processes' },
        { type: 'LeakFree', status: 'True', reason: 'NoLeaks', message: 'none' },
      ],
    });
    const r = await run;
    expect(r).toEqual({
      code: 0,
      stdout:
        `checkpoint.fdckpt.io/${c.metadata.name} created\n` +
        `checkpoint.fdckpt.io/${c.metadata.name} Ready (Captured): 4 fds in 1 processes; image /var/lib/fdckpt/images/x.fdimg on node-a\n`,
      stderr: '',
    });
  });

  test('preflight pod/NAME: a dry run; a pod that is not checkpointable exits 3 naming every reason', async () => {
    await makePod(h, 'db', { node: 'node-a', phase: 'Running' });
    const run = kubectlFdckpt(['preflight', 'pod/db', '--container', 'app']);
    const c = await scheduled('db');
    expect(c.metadata.name).toMatch(/^db-preflight-\w+$/);
    // No leak policy: the verdict is judged as a real checkpoint (Fail) would be.
    expect(c.spec).toEqual({ podName: 'db', containers: ['app'], dryRun: true });
    const holder = { pid: 40, comm: 'db', fd: 5, pod: { uid: 'u-db', namespace: 'default', name: 'db' } };
    await agentWrites(c.metadata.name!, {
      totalFds: 9,
      totalProcesses: 1,
      leaks: {
        total: 1,
        items: [
          {
            type: 'pipe',
            object: 'pipe:[77]',
            inside: holder,
            outside: { pid: 99, comm: 'logger', fd: 1 },
          },
        ],
      },
      problems: {
        total: 2,
        items: [
          {
            kind: 'unlinked',
            pid: 40,
            fd: 7,
            message: 'pid 40 fd 7 (/data/x (deleted)): the file was unlinked',
          },
          { kind: 'locked', pid: 40, fd: 8, message: 'pid 40 fd 8 (/data/lock): holds a lock' },
        ],
      },
      conditions: [
        { type: 'Captured', status: 'True', reason: 'DryRun', message: '9 fds in 1 processes; dry run' },
        { type: 'LeakFree', status: 'False', reason: 'LeaksFound', message: '1 leak' },
      ],
    });
    const r = await run;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(3);
    const lines = r.stdout.trimEnd().split('\n');
    // A dry run ends Ready; the controller's Checkpointable condition is the verdict.
    expect(lines[1]).toBe(
      `checkpoint.fdckpt.io/${c.metadata.name} not checkpointable (UnsupportedFds): 1 leak(s), 2 refused fd(s) (9 fds in 1 processes)`,
    );
    expect(lines.slice(2)).toEqual([
      'leak: pipe pipe:[77]: inside pid 40 fd 5 (db, default/db) <-> outside pid 99 fd 1 (logger, host)',
      'refused: pid 40 fd 7 (/data/x (deleted)): the file was unlinked',
      'refused: pid 40 fd 8 (/data/lock): holds a lock',
    ]);
  });

  test("--no-wait creates in the current context's namespace; -n overrides it", async () => {
    const mig = await kubectlFdckpt(
      ['migrate', 'pod/web', '--to', 'node-b', '--no-wait', '--name', 'mv1'],
      teamKubeconfig,
    );
    expect(mig).toEqual({ code: 0, stdout: 'migration.fdckpt.io/mv1 created\n', stderr: '' });
    const created = (await h.custom.getNamespacedCustomObject({
      group: 'fdckpt.io',
      version: 'v1alpha1',
      namespace: 'team',
      plural: 'migrations',
      name: 'mv1',
    })) as Migration;
    expect(created.spec).toEqual({ podName: 'web', targetNode: 'node-b' });
    const ckpt = await kubectlFdckpt(
      ['checkpoint', 'web', '-n', 'default', '--no-wait', '--name', 'c-default', '--leak-policy', 'Warn'],
      teamKubeconfig,
    );
    expect(ckpt.code).toBe(0);
    expect((await h.checkpoints.get('default', 'c-default')).spec).toEqual({
      podName: 'web',
      leakPolicy: 'Warn',
    });
  });

  test('migrate waits for the Migration to end: a checkpoint refused for leaks exits 3', async () => {
    const run = kubectlFdckpt(['migrate', 'pod/web', '--to', 'node-b', '--name', 'mv2']);
    const where = { group: 'fdckpt.io', version: 'v1alpha1', namespace: 'default', plural: 'migrations' };
    const mig = await until('the Migration', async () => {
      try {
        return (await h.custom.getNamespacedCustomObject({ ...where, name: 'mv2' })) as Migration;
      } catch {
        return undefined;
      }
    });
    let conditions = setCondition(undefined, {
      type: 'Checkpointed',
      status: 'False',
      reason: 'LeaksFound',
      message: '2 leak(s)',
    });
    conditions = setCondition(conditions, {
      type: 'Ready',
      status: 'False',
      reason: 'CheckpointFailed',
      message: 'checkpoint mv2-x: 2 leak(s)',
    });
    await h.custom.replaceNamespacedCustomObjectStatus({
      ...where,
      name: 'mv2',
      body: { ...mig, status: { phase: 'Failed', checkpointName: 'mv2-x', conditions } },
    });
    const r = await run;
    expect(r).toEqual({
      code: 3,
      stdout:
        'migration.fdckpt.io/mv2 created\n' +
        'migration.fdckpt.io/mv2 Failed (CheckpointFailed): checkpoint mv2-x: 2 leak(s)\n' +
        'checkpoint mv2-x: LeaksFound: 2 leak(s)\n',
      stderr: '',
    });
  });

  test('the wait is bounded by --timeout: exit 1 saying where it stopped', async () => {
    const r = await kubectlFdckpt(['checkpoint', 'pod/nopod', '--timeout', '1s']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^kubectl fdckpt: timed out waiting for checkpoint\.fdckpt\.io\/nopod-\w+ \(phase (none|Pending[^)]*)\); it is still there/,
    );
  });

  test('usage errors exit 2; --help exits 0', async () => {
    expect((await kubectlFdckpt(['checkpoint'])).code).toBe(2);
    expect((await kubectlFdckpt(['checkpoint', 'deployment/web'])).stderr).toBe(
      'kubectl fdckpt checkpoint: expected pod/NAME, got "deployment/web"\n',
    );
    expect((await kubectlFdckpt(['restore', 'pod/web'])).code).toBe(2);
    expect((await kubectlFdckpt(['checkpoint', 'pod/web', '--bogus'])).code).toBe(2);
    const help = await kubectlFdckpt(['migrate', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: kubectl fdckpt migrate pod\/NAME \[--to NODE\]/);
  });
});
