/**
 * Two-node local control plane with the whole operator (controller, one agent
 * per node with image transfer), and helpers shared by the migration e2e tests.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Migration } from '../../src/api/index.js';
import { MIGRATION } from '../../src/api/index.js';
import { findPodCgroup, listTasks } from '../../src/agent/cgroup/index.js';
import { EngineAdapter } from '../../src/agent/daemon/engine-adapter.js';
import { startAgent } from '../../src/agent/daemon/daemon.js';
import type { RunningAgent } from '../../src/agent/daemon/daemon.js';
import type { Clients } from '../../src/kube/client.js';
import { ResourceClient, loadKubeConfig, makeClients } from '../../src/kube/client.js';
import { localWebhookOptions } from '../../src/cli/local-operator.js';
import { startController } from '../../src/controller/manager.js';
import type { RunningController } from '../../src/controller/manager.js';
import { testLineLogger, testLogger } from './log.js';
import { startControlPlane, type ControlPlane } from '../../src/local/controlplane.js';
import { installOperator } from '../../src/local/cluster/install.js';
import { until } from './until.js';
export { fdTable } from './procfs.js';
import { KUBECTL } from './kubectl.js';
import type { AgentProcess } from './agent-process.js';
import { startAgentProcess } from './agent-process.js';
import { endInput } from '../../src/local/child-input.js';

/** The repository root: the nearest directory up with package.json (tests run from src, benches from build/). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || dir.endsWith('/build')) {
    const up = dirname(dir);
    if (up === dir) throw new Error('no package.json above test/support');
    dir = up;
  }
  return dir;
}

const HOLD = join(repoRoot(), 'native', 'build', 'fdckpt-hold');

export interface TwoNodes {
  cp: ControlPlane;
  c: Clients;
  migrations: ResourceClient<Migration>;
  tmp: string;
  /** The in-process agents, by node index (0, 1), without the one options.agentProcess runs. */
  agents: RunningAgent[];
  /** The controller (its metrics port). */
  controller: RunningController;
  /** The agent run as a process (options.agentProcess), to kill and start again. */
  agentProcess?: AgentProcess;
  stop(): Promise<void>;
}

/** Fails (never skips) when the launcher or kubectl is missing. */
export async function startTwoNodes(
  options: {
    timeoutSeconds?: number;
    /** Run this node's agent (index 0 or 1) as a process, the real `fdckpt agent` from dist/. */
    agentProcess?: number;
  } = {},
): Promise<TwoNodes> {
  if (!existsSync(HOLD)) throw new Error(`test prerequisite missing: ${HOLD} (run npm run build:native)`);
  if (spawnSync(KUBECTL, ['version', '--client']).status !== 0) {
    throw new Error(`test prerequisite missing: kubectl (${KUBECTL}); run scripts/kube/build.sh`);
  }
  const tmp = mkdtempSync(join(tmpdir(), 'fdckpt-mig-'));
  const agents: RunningAgent[] = [];
  let agentProcess: AgentProcess | undefined;
  let controller: RunningController | undefined;
  const cp = await startControlPlane({
    nodes: 2,
    // Inside tmp, so that stop() removes the nodes' storage too.
    dataDir: join(tmp, 'cluster'),
    ...(testLineLogger() ? { log: testLineLogger() } : {}),
    startOperator: async (info) => {
      // deploy/'s RBAC as shipped; the controller and the agents run as their ServiceAccounts.
      const credentials = await installOperator(info.cluster, info.kubeconfigPath);
      controller = await startController({
        kc: loadKubeConfig(credentials.controller),
        log: testLogger('controller'),
        port: 0,
        launcher: { image: 'unused', hostPath: HOLD, timeoutSeconds: options.timeoutSeconds ?? 600 },
        migrations: { enabled: true },
        webhook: localWebhookOptions(info.cluster),
      });
      for (const [i, node] of info.nodes.entries()) {
        const own = await credentials.agent(node.name);
        if (i === options.agentProcess) {
          agentProcess = await startAgentProcess({
            root: repoRoot(),
            kubeconfigPath: own.kubeconfig,
            transferTokenFile: own.transferTokenFile,
            node: node.name,
            dataDir: node.storageDir,
          });
          continue;
        }
        agents.push(
          await startAgent({
            // Each agent with a token bound to a pod on its own node (deploy/agent-admission.yaml).
            kc: loadKubeConfig(own.kubeconfig),
            nodeName: node.name,
            dataDir: node.storageDir,
            engine: new EngineAdapter({ dataDir: node.storageDir }),
            log: testLogger(`agent ${node.name}`),
            port: 0,
            transfer: { port: 0, host: '127.0.0.1', tokenFile: own.transferTokenFile },
          }),
        );
      }
      return {
        stop: async () => {
          for (const a of agents) await a.stop();
          await agentProcess?.stop();
          await controller?.stop();
        },
      };
    },
  });
  const c = makeClients(loadKubeConfig(cp.kubeconfigPath));
  return {
    cp,
    c,
    tmp,
    agents,
    agentProcess,
    controller: controller!,
    migrations: new ResourceClient<Migration>(c.custom, MIGRATION),
    stop: async () => {
      await cp.stop();
      rmSync(tmp, { recursive: true, force: true });
      // The control plane keeps its data directory (kubeconfig, nodes' images) after stop.
      rmSync(cp.dataDir, { recursive: true, force: true });
    },
  };
}

export { until };

/** kubectl without blocking this process (the API server runs in it). */
export function kubectl(t: TwoNodes, input: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(KUBECTL, ['--kubeconfig', t.cp.kubeconfigPath, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`kubectl ${args.join(' ')}: ${err}`)),
    );
    endInput(p.stdin, input, (e) => reject(e));
  });
}

/** Closes inherited fds above 2 (they would be leaks across the pod boundary), then runs the script. */
export const CLEAN_FDS =
  "import os, sys; os.closerange(3, 1 << 16); os.execvp('sh', ['sh', '-c', sys.argv[1]])";

export async function barePod(
  t: TwoNodes,
  name: string,
  node: string,
  script: string,
  annotations: Record<string, string> = {},
): Promise<void> {
  await t.c.core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name, namespace: 'default', annotations },
      spec: {
        nodeName: node,
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'app', image: 'host', command: ['python3', '-c', CLEAN_FDS, script] }],
      },
    },
  });
}

/** The pod's sleep process, found through its cgroup. */
export async function sleepOf(t: TwoNodes, name: string): Promise<number> {
  return until(`pod ${name} running sleep`, async () => {
    const pod = await t.c.core.readNamespacedPod({ name, namespace: 'default' });
    if (pod.status?.phase !== 'Running') return undefined;
    const ids = (pod.status.containerStatuses ?? []).map((s) => s.containerID ?? '');
    const cg = findPodCgroup(pod.metadata?.uid ?? '', ids);
    return listTasks(cg.containers[0]!.cgroup).pids.find((p) =>
      readlinkSync(`/proc/${p}/exe`).endsWith('/sleep'),
    );
  });
}

export async function finished(t: TwoNodes, name: string): Promise<Migration> {
  return until(`migration ${name} finished`, async () => {
    const m = await t.migrations.get('default', name);
    return m.status?.phase === 'Succeeded' || m.status?.phase === 'Failed' ? m : undefined;
  });
}

export async function podGone(t: TwoNodes, name: string): Promise<boolean> {
  try {
    await t.c.core.readNamespacedPod({ name, namespace: 'default' });
    return false;
  } catch {
    return true;
  }
}
