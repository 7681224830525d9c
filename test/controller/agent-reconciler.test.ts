/**
 * The agent daemon's reconcilers, step by step, against the API double. The
 * engine here is a scripted NodeEngine: these tests are about what the daemon
 * writes to the API, not about /proc (the engine has its own tests against
 * real processes, and test/controller/integration.test.ts runs both).
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { CONDITIONS } from '../../src/api/index.js';
import { AgentCheckpointReconciler } from '../../src/agent/daemon/checkpoint.js';
import type {
  CheckpointPodOutcome,
  CheckpointPodRequest,
  NodeEngine,
  RestoreIntoOutcome,
  RestoreIntoRequest,
} from '../../src/agent/daemon/engine.js';
import { AgentRestoreReconciler } from '../../src/agent/daemon/restore.js';
import { CheckpointReconciler } from '../../src/controller/checkpoint.js';
import { MemoryEventRecorder } from '../../src/kube/events.js';
import { RestoreReconciler } from '../../src/controller/restore.js';
import type { Harness } from './support.js';
import { createCheckpoint, createRestore, makePod, reason, startHarness } from './support.js';

class ScriptedEngine implements NodeEngine {
  checkpoints: CheckpointPodRequest[] = [];
  restores: RestoreIntoRequest[] = [];
  deleted: string[] = [];
  constructor(
    public checkpointOutcome: CheckpointPodOutcome | Error,
    public restoreOutcome: RestoreIntoOutcome | Error = {
      fdsReplayed: 0,
      failures: [],
      durations: { replayMs: 0 },
    },
  ) {}
  checkpointPod(r: CheckpointPodRequest): Promise<CheckpointPodOutcome> {
    this.checkpoints.push(r);
    const o = this.checkpointOutcome;
    return o instanceof Error ? Promise.reject(o) : Promise.resolve(o);
  }
  restoreInto(r: RestoreIntoRequest): Promise<RestoreIntoOutcome> {
    this.restores.push(r);
    const o = this.restoreOutcome;
    return o instanceof Error ? Promise.reject(o) : Promise.resolve(o);
  }
  deleteImage(path: string): Promise<void> {
    this.deleted.push(path);
    return Promise.resolve();
  }
}

const leak = {
  type: 'pipe',
  object: 'pipe:[4242]',
  via: 'other end of pipe',
  inside: { pid: 10, comm: 'app', fd: 3, pod: { uid: 'u-p', namespace: 'default', name: 'p' } },
  outside: { pid: 20, comm: 'cat', fd: 0 },
};

function outcome(leaks = 0): CheckpointPodOutcome {
  return {
    containers: [{ name: 'app', processes: 2, fds: 9, argv: ['sleep', '1000'] }],
    leaksChecked: true,
    leaks: Array.from({ length: leaks }, () => leak),
    problems: [],
    image: { path: '/data/images/default/c.fdckpt', size: 512, sha256: 'c'.repeat(64) },
    durations: { freezeMs: 3.2, captureMs: 1.7 },
  };
}

let h: Harness;
let ctl: CheckpointReconciler;
beforeEach(async () => {
  h = await startHarness();
  ctl = new CheckpointReconciler({
    checkpoints: h.checkpoints,
    core: h.core,
    events: new MemoryEventRecorder(),
  });
});
afterEach(async () => {
  await h.close();
});

function agentFor(
  engine: NodeEngine,
  node = 'n1',
): { ckpt: AgentCheckpointReconciler; restore: AgentRestoreReconciler; events: MemoryEventRecorder } {
  const events = new MemoryEventRecorder();
  const deps = { nodeName: node, dataDir: '/data', engine, core: h.core, events };
  return {
    ckpt: new AgentCheckpointReconciler(h.checkpoints, deps),
    restore: new AgentRestoreReconciler(h.restores, h.checkpoints, deps),
    events,
  };
}

describe('agent Checkpoint reconciler', () => {
  it('ignores work that is not scheduled to its node', async () => {
    const engine = new ScriptedEngine(outcome());
    await makePod(h, 'p', { node: 'n1', phase: 'Running' });
    await createCheckpoint(h, 'c', { podName: 'p' });
    await agentFor(engine).ckpt.reconcile('default/c');
    await ctl.reconcile('default/c');
    await agentFor(engine, 'n2').ckpt.reconcile('default/c');
    expect(engine.checkpoints).toHaveLength(0);
  });

  it('captures once, writes its own status, and the controller makes it Ready', async () => {
    const engine = new ScriptedEngine(outcome());
    const pod = await makePod(h, 'p', { node: 'n1', phase: 'Running' });
    const c0 = await createCheckpoint(h, 'c', { podName: 'p', ignore: { types: ['inotify'] } });
    await ctl.reconcile('default/c');
    const agent = agentFor(engine);
    await agent.ckpt.reconcile('default/c');
    await agent.ckpt.reconcile('default/c');
    expect(engine.checkpoints).toHaveLength(1);
    expect(engine.checkpoints[0]).toMatchObject({
      pod: {
        name: 'p',
        uid: pod.metadata?.uid,
        containers: [{ name: 'app', containerID: `containerd://${'0'.repeat(64)}` }],
      },
      leakPolicy: 'Fail',
      dryRun: false,
      ignore: { types: ['inotify'], paths: [] },
      imagePath: `/data/images/default/c-${c0.metadata.uid ?? ''}.fdckpt`,
    });
    let c = await h.checkpoints.get('default', 'c');
    expect(reason(c, CONDITIONS.Captured)).toBe('True/Captured');
    expect(reason(c, CONDITIONS.LeakFree)).toBe('True/NoLeaks');
    expect(c.status).toMatchObject({
      totalFds: 9,
      totalProcesses: 2,
      image: { node: 'n1', size: 512 },
      durations: { freezeMs: 3, captureMs: 2 },
      leaks: { total: 0, items: [] },
    });
    await ctl.reconcile('default/c');
    c = await h.checkpoints.get('default', 'c');
    expect(reason(c, CONDITIONS.Ready)).toBe('True/Captured');
    expect(agent.events.events.map((e) => e.reason)).toEqual(['Captured']);
  });

  it('a leaky pod gets LeakFree=False naming both holders', async () => {
    const engine = new ScriptedEngine(outcome(3));
    await makePod(h, 'p', { node: 'n1', phase: 'Running' });
    await createCheckpoint(h, 'c', { podName: 'p' });
    await ctl.reconcile('default/c');
    await agentFor(engine).ckpt.reconcile('default/c');
    await ctl.reconcile('default/c');
    const c = await h.checkpoints.get('default', 'c');
    expect(reason(c, CONDITIONS.LeakFree)).toBe('False/LeaksFound');
    const message = c.status?.conditions?.find((x) => x.type === 'LeakFree')?.message;
    expect(message).toBe(
      'pipe pipe:[4242] is held inside by pid 10 (app, default/p) fd 3 and outside by pid 20 (cat, host) fd 0; and 2 more',
    );
    expect(c.status?.leaks?.total).toBe(3);
    // The engine's holders and `via`, as the engine gave them: nothing parsed or dropped.
    expect(c.status?.leaks?.items[0]).toEqual(leak);
    expect(reason(c, CONDITIONS.Ready)).toBe('False/LeaksFound');
  });

  it('an engine error becomes Captured=False with its message, and is not retried', async () => {
    const engine = new ScriptedEngine(new Error('cgroup /kubepods/besteffort/podX: no processes to capture'));
    await makePod(h, 'p', { node: 'n1', phase: 'Running' });
    await createCheckpoint(h, 'c', { podName: 'p' });
    await ctl.reconcile('default/c');
    const agent = agentFor(engine);
    await agent.ckpt.reconcile('default/c');
    await agent.ckpt.reconcile('default/c');
    expect(engine.checkpoints).toHaveLength(1);
    await ctl.reconcile('default/c');
    const c = await h.checkpoints.get('default', 'c');
    expect(reason(c, CONDITIONS.Ready)).toBe('False/CaptureFailed');
    expect(c.status?.conditions?.find((x) => x.type === 'Ready')?.message).toContain(
      'no processes to capture',
    );
  });

  it('deleting the Checkpoint deletes its image, then the controller lets it go', async () => {
    const engine = new ScriptedEngine(outcome());
    await makePod(h, 'p', { node: 'n1', phase: 'Running' });
    const c0 = await createCheckpoint(h, 'c', { podName: 'p' });
    await ctl.reconcile('default/c');
    const agent = agentFor(engine);
    await agent.ckpt.reconcile('default/c');
    await ctl.reconcile('default/c');
    await h.checkpoints.delete(await h.checkpoints.get('default', 'c'));
    await ctl.reconcile('default/c');
    await agent.ckpt.reconcile('default/c');
    // The image this agent writes for the Checkpoint, not the path its status names.
    expect(engine.deleted).toEqual([`/data/images/default/c-${c0.metadata.uid ?? ''}.fdckpt`]);
    await ctl.reconcile('default/c');
    await expect(h.checkpoints.get('default', 'c')).rejects.toMatchObject({ code: 404 });
  });
});

describe('agent Restore reconciler', () => {
  it('replays into the restored pod and the controller makes the Restore Ready', async () => {
    const engine = new ScriptedEngine(outcome(), {
      fdsReplayed: 9,
      failures: [],
      durations: { replayMs: 4 },
    });
    await makePod(h, 'p', { node: 'n1', phase: 'Running' });
    await createCheckpoint(h, 'c', { podName: 'p' });
    await ctl.reconcile('default/c');
    const agent = agentFor(engine);
    await agent.ckpt.reconcile('default/c');
    await ctl.reconcile('default/c');
    await makePod(h, 'waiting', { node: 'n1', phase: 'Running' });
    await createRestore(h, 'r', {
      checkpointName: 'c',
      target: { podName: 'waiting' },
      fds: 'Inherited',
      listenFds: true,
    });
    const rctl = new RestoreReconciler({
      restores: h.restores,
      checkpoints: h.checkpoints,
      core: h.core,
      events: new MemoryEventRecorder(),
      launcher: { image: 'x' },
    });
    await rctl.reconcile('default/r');
    await agent.restore.reconcile('default/r');
    await agent.restore.reconcile('default/r');
    expect(engine.restores).toHaveLength(1);
    expect(engine.restores[0]).toMatchObject({
      imagePath: '/data/images/default/c.fdckpt',
      fds: 'Inherited',
      listenFds: true,
      policy: { rules: [] },
      pod: { name: 'waiting' },
    });
    await rctl.reconcile('default/r');
    const r = await h.restores.get('default', 'r');
    expect(reason(r, CONDITIONS.Replayed)).toBe('True/Replayed');
    expect(reason(r, CONDITIONS.Ready)).toBe('True/Restored');
    expect(r.status?.fdsReplayed).toBe(9);
  });
});
