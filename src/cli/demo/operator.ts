/**
 * Part 2 of `fdckpt demo`: the operator, as a user drives it with kubectl, on
 * the local control plane (real etcd, kube-apiserver, controller-manager and
 * scheduler; a process kubelet, the controller and an agent in this process). A pod of real processes is checkpointed through a
 * Checkpoint, restored into a new pod through a Restore, and the restored
 * process's fd table is compared with the original's.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';

const run = promisify(execFile);
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { capture } from '../../agent/capture/index.js';
import { findPodCgroup, listTasks } from '../../agent/cgroup/index.js';
import { diffCheckpoints, renderDiff } from '../../agent/image/index.js';
import { waitSettled } from '../../agent/replay/index.js';
import { startLocalOperator } from '../local-operator.js';
import { silentLogger } from '../../kube/log.js';
import { kubeBinary } from '../../local/cluster/binaries.js';
import { startControlPlane } from '../../local/controlplane.js';

const CRDS = fileURLToPath(new URL('../../../crds/', import.meta.url));

function manifests(dir: string): string {
  // bash closes inherited fds above 2 in the process kubelet's containers; the program
  // opens its own: a config read to offset 10 (fd 3, dup'ed as fd 9) and an append-only log.
  const script = `exec 3< ${dir}/config.txt 4>> ${dir}/app.log 9<&3; read -r first <&3; exec sleep 100000`;
  return `apiVersion: v1
kind: Pod
metadata: { name: fd-demo, namespace: default }
spec:
  containers:
    - name: app
      image: busybox
      command: [sh, -c, ${JSON.stringify(script)}]
---
apiVersion: fdckpt.io/v1alpha1
kind: Checkpoint
metadata: { name: fd-demo, namespace: default }
spec: { podName: fd-demo, leakPolicy: Fail, afterCapture: LeaveRunning }
`;
}

const RESTORE = `apiVersion: fdckpt.io/v1alpha1
kind: Restore
metadata: { name: fd-demo, namespace: default }
spec:
  checkpointName: fd-demo
  target: { newPod: { name: fd-demo-restored } }
`;

/** The pid of the `comm` process in a pod with this UID, found as the agent finds it: by the pod's cgroup. */
function podProcess(uid: string, comm: string): number {
  const { pids } = listTasks(findPodCgroup(uid).pod);
  const pid = pids.find((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === comm;
    } catch {
      return false;
    }
  });
  if (pid === undefined) throw new Error(`no ${comm} process in pod ${uid}`);
  return pid;
}

/** Runs the operator demo, printing through `say`; resolves to 0 when the restored table matches. */
export async function operatorDemo(say: (line?: string) => void): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'fdckpt-demo-op-'));
  writeFileSync(join(dir, 'config.txt'), 'mode=demo\nlevel=3\n');
  const cp = await startControlPlane({
    nodes: 1,
    dataDir: join(dir, 'cluster'),
    startOperator: (info) => startLocalOperator(info, { log: () => silentLogger }),
  });
  // Asynchronous: the API server answering kubectl runs on this very event loop.
  const kubectl = async (...args: string[]): Promise<string> =>
    (await run(kubeBinary('kubectl'), ['--kubeconfig', cp.kubeconfigPath, ...args], { encoding: 'utf8' }))
      .stdout;
  const show = async (...args: string[]): Promise<void> => {
    say(`$ kubectl ${args.join(' ')}`);
    say((await kubectl(...args)).trimEnd().replace(/^/gm, '  '));
  };
  const uidOf = (pod: string): Promise<string> =>
    kubectl('get', 'pod', pod, '-o', 'jsonpath={.metadata.uid}');
  try {
    say(`local control plane: 1 node, controller and agent running; kubeconfig ${cp.kubeconfigPath}`);
    await show('apply', '-f', CRDS);
    writeFileSync(join(dir, 'demo.yaml'), manifests(dir));
    writeFileSync(join(dir, 'restore.yaml'), RESTORE);
    await show('apply', '-f', join(dir, 'demo.yaml'));
    await show('wait', '--for=condition=Ready', 'checkpoint/fd-demo', '--timeout=60s');
    await show('get', 'checkpoints');
    await show('apply', '-f', join(dir, 'restore.yaml'));
    await show('wait', '--for=condition=Ready', 'restore/fd-demo', '--timeout=60s');
    await show('get', 'restores');
    const original = podProcess(await uidOf('fd-demo'), 'sleep');
    const restored = podProcess(await uidOf('fd-demo-restored'), 'sleep');
    await waitSettled(restored);
    // By default (Restore fds: Program) the new pod keeps its own fds 0–2 (its log):
    // those differ by design, everything else must not.
    const all = diffCheckpoints(capture([original]).checkpoint, capture([restored]).checkpoint);
    const diffs = all.filter((d) => d.fd === null || d.fd > 2);
    say(`original pod process ${original} vs restored pod process ${restored}, captured again and diffed:`);
    say(
      `  ${diffs.length === 0 ? 'no difference in fd numbers, flags, offsets, close-on-exec or sharing' : renderDiff(diffs)}` +
        (all.length > diffs.length ? " (fds 0-2 are the new pod's own stdio, its log, by default)" : ''),
    );
    return diffs.length === 0 ? 0 : 1;
  } finally {
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
