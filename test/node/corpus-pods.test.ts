/**
 * Acceptance corpus as pods (issue 13): redis, memcached, nginx, postgres, a Node.js http
 * server and python3 -m http.server, each a real container on node real-0, serving a
 * request at its pod address; then a Migration to real-1 with the defaults (the image
 * travels between the agents, the source pod is deleted), and the replacement container
 * must serve a request again and log on its own. Results go to $FDCKPT_CORPUS_PODS_OUT
 * (default: $TMPDIR/fdckpt-corpus-pods.json) for docs/corpus.md.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from '../support/until.js';
import { startRealCluster, type RealCluster } from './cluster.js';
import { configMapOf, podOf, POD_PROGRAMS, type PodProgram } from './corpus-programs.js';
import { inheritable, listeningSockets, programPid, repo, suite } from './support.js';

const work = mkdtempSync('/tmp/fdc-');
let rc: RealCluster;

interface Row {
  program: string;
  processes: number;
  captured: number;
  problems: number;
  replayed: number;
  migrationToAnswerMs: number;
}
const rows: Row[] = [];

/** scripts/image/build-corpus.sh (cached per machine): the corpus image's archive. */
function corpusImage(): string {
  const r = spawnSync('bash', [join(repo, 'scripts', 'image', 'build-corpus.sh')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scripts/image/build-corpus.sh failed (${r.status}):\n${r.stderr}`);
  return join(r.stdout.trim().split('\n').pop()!, 'corpus.tar');
}

/** Asks `p` at pod `name`'s address until it answers as it should; returns the answer. */
async function serving(p: PodProgram, name: string, timeoutMs = 60_000): Promise<string> {
  const pod = await rc.running(name);
  const ip = pod.status?.podIP;
  if (!ip) throw new Error(`pod ${name} has no IP`);
  let last = '';
  return until(
    `${p.label} serving at ${ip}:${p.port} (pod ${name})`,
    async () => {
      try {
        const answer = await p.ask(ip, p.port);
        if (p.expect.test(answer)) return answer;
        last = `answered ${JSON.stringify(answer.slice(0, 200))}`;
      } catch (e) {
        last = String((e as Error).message ?? e).slice(0, 300);
      }
      return undefined;
    },
    timeoutMs,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; last: ${last}; logs: ${rc.kubectl('logs', name).slice(-600)}`);
  });
}

/** The host PID of pod `name`'s program. */
async function pidOf(name: string): Promise<number> {
  const pod = await rc.running(name);
  return programPid(pod.metadata!.uid!, pod.status!.containerStatuses![0]!.containerID!);
}

/** The fds the default (Program) replays from process `pid`: inherited, not a listening socket. */
function replayable(pid: number): Record<string, string> {
  const listening = listeningSockets(pid);
  return Object.fromEntries(
    Object.entries(inheritable(pid)).filter(
      ([, what]) => !listening.has(/^socket:\[(\d+)\]/.exec(what)?.[1] ?? ''),
    ),
  );
}

/** A file as `inheritable` shows it, without the inode of a pipe, socket or anon inode. */
const kind = (what: string | undefined): string => (what ?? 'closed').replace(/:\[\d+\]/, ':[]');

suite()('acceptance corpus as pods: serve, migrate to the other node, serve again', () => {
  beforeAll(async () => {
    rc = await startRealCluster(work, [corpusImage()]);
    await rc.installDeploy();
  }, 900_000);

  afterAll(async () => {
    const out = process.env['FDCKPT_CORPUS_PODS_OUT'] ?? join(tmpdir(), 'fdckpt-corpus-pods.json');
    writeFileSync(out, JSON.stringify(rows, null, 2));
    await rc?.stop();
    rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it.each(POD_PROGRAMS.map((p) => [p.label, p] as const))(
    '%s',
    async (_label, p) => {
      const name = `c-${p.name}`;
      const cm = configMapOf(p, name);
      if (cm) await rc.core.createNamespacedConfigMap({ namespace: 'default', body: cm });
      await rc.core.createNamespacedPod({ namespace: 'default', body: podOf(p, name, 'real-0') });
      await serving(p, name, 120_000);
      const held = replayable(await pidOf(name));

      const started = Date.now();
      await rc.create('migrations', {
        kind: 'Migration',
        metadata: { name },
        spec: { podName: name, targetNode: 'real-1', leakPolicy: 'Warn' },
      });
      const status = await rc.ready('migrations', name, 180_000);
      const target = String(status['targetPod']);
      const pod = await rc.running(target);
      expect(pod.spec?.nodeName).toBe('real-1');
      await serving(p, target);
      const migrationToAnswerMs = Date.now() - started;
      // What the program held without close-on-exec (but its listeners, which a fresh
      // program opens again itself: docs/replay.md), the replacement holds at the same
      // numbers: the same kind of file (a new pipe or eventfd), a file at its offset.
      const got = inheritable(await pidOf(target));
      for (const [fd, what] of Object.entries(held))
        expect(`${fd} ${kind(got[fd])}`).toBe(`${fd} ${kind(what)}`);
      await until('source pod deleted', async () =>
        (await rc.core.listNamespacedPod({ namespace: 'default' })).items.some(
          (x) => x.metadata?.name === name,
        )
          ? undefined
          : true,
      );
      // The replacement's logs are its own container's: the program's start is in them.
      if (p.logs) {
        const re = p.logs;
        await until(`kubectl logs ${target} shows ${re}`, () =>
          Promise.resolve(re.test(rc.kubectl('logs', target)) ? true : undefined),
        );
      }

      const get = async (plural: string, n: string): Promise<Record<string, unknown>> =>
        (
          (await rc.custom.getNamespacedCustomObject({
            group: 'fdckpt.io',
            version: 'v1alpha1',
            namespace: 'default',
            plural,
            name: n,
          })) as { status: Record<string, unknown> }
        ).status;
      const cp = (await get('checkpoints', String(status['checkpointName']))) as {
        containers?: { fds: number; processes: number }[];
        problems?: { total: number };
      };
      const restore = await get('restores', String(status['restoreName']));
      expect(restore['restoredPod']).toBe(target);
      expect(restore['fdsReplayed']).toBe(Object.keys(held).length);
      rows.push({
        program: p.label,
        processes: cp.containers?.[0]?.processes ?? 0,
        captured: cp.containers?.[0]?.fds ?? 0,
        problems: cp.problems?.total ?? 0,
        replayed: Number(restore['fdsReplayed'] ?? 0),
        migrationToAnswerMs,
      });
      await rc.core.deleteNamespacedPod({ name: target, namespace: 'default', gracePeriodSeconds: 0 });
    },
    420_000,
  );
});
