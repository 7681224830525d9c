/**
 * The agent's Restore reconciler: for a Restore scheduled to this node, find
 * the target pod's launchers, replay the Checkpoint's image into them
 * (through the NodeEngine), and report Replayed, fdsReplayed, failures.
 */
import type { Checkpoint, Restore } from '../../api/index.js';
import { CONDITIONS, RESTORE, bounded, findCondition, isTrue, sourceRecord } from '../../api/index.js';
import type { ResourceClient } from '../../kube/client.js';
import type { Reconciler, Result } from '../../kube/reconciler.js';
import { errorMessage, isNotFound } from '../../kube/errors.js';
import { splitKey } from '../../kube/informer.js';
import type { StatusDraft } from '../../kube/status.js';
import { updateStatus } from '../../kube/status.js';
import type { AgentDeps } from './checkpoint.js';
import { NotReadyError } from './engine.js';
import { PodProblem, podTarget } from './pods.js';

const NOT_READY_LIMIT_MS = 600_000;

/** An image as this node has it: its own, or a copy fetched from the capturing node. */
interface LocalImage {
  path: string;
  transferMs: number;
  release?: () => Promise<void>;
  transfer?: { bytes: number; attempts: number };
}

export class AgentRestoreReconciler implements Reconciler {
  readonly kind = RESTORE.kind;

  constructor(
    private readonly restores: ResourceClient<Restore>,
    private readonly checkpoints: ResourceClient<Checkpoint>,
    private readonly deps: AgentDeps,
  ) {}

  /**
   * Copies fetched for a Restore that is waiting for its launcher (NotReady),
   * by key and Restore uid: every retry replays the same copy instead of
   * fetching the whole image again; released once the Restore is done or gone.
   */
  private readonly fetched = new Map<string, { uid: string; image: LocalImage }>();

  private async releaseFetched(key: string): Promise<void> {
    const kept = this.fetched.get(key);
    this.fetched.delete(key);
    await kept?.image.release?.();
  }

  async reconcile(key: string): Promise<Result> {
    const { namespace, name } = splitKey(key);
    const restore = await this.restores.read(namespace, name);
    if (!restore || restore.metadata.deletionTimestamp) {
      await this.releaseFetched(key);
      return {}; // gone: nothing to reconcile
    }
    const status = restore.status ?? {};
    if (status.nodeName !== this.deps.nodeName || !isTrue(status.conditions, CONDITIONS.Scheduled)) return {};
    const replayed = findCondition(status.conditions, CONDITIONS.Replayed);
    if (replayed && replayed.status !== 'Unknown') return {};
    return this.replay(restore);
  }

  private async replay(restore: Restore): Promise<Result> {
    const ns = restore.metadata.namespace ?? '';
    const name = restore.metadata.name ?? '';
    // Conditions say which generation was replayed: the one read before the work.
    const write = (change: (d: StatusDraft<Restore>) => void): Promise<Restore> =>
      updateStatus(this.restores, ns, name, change, {
        generation: restore.metadata.generation,
        now: () => this.deps.now?.() ?? new Date(),
      });
    const fail = async (reason: string, message: string): Promise<Result> => {
      // Final: a copy kept for retries has nothing left to serve.
      await this.releaseFetched(`${ns}/${name}`);
      await write((d) => d.setCondition({ type: CONDITIONS.Replayed, status: 'False', reason, message }));
      this.deps.metrics?.restores.inc({ outcome: 'failed' });
      this.deps.events.record(restore, 'Warning', reason, message);
      return {};
    };
    let ckpt: Checkpoint;
    try {
      ckpt = await this.checkpoints.get(ns, restore.spec.checkpointName);
    } catch (err) {
      if (isNotFound(err))
        return fail('CheckpointGone', `checkpoint ${restore.spec.checkpointName} no longer exists`);
      throw err;
    }
    const image = ckpt.status?.image;
    if (!image || (image.node !== this.deps.nodeName && !this.deps.fetchImage)) {
      return fail(
        'ImageNotOnNode',
        `checkpoint ${restore.spec.checkpointName} has no image on ${this.deps.nodeName}`,
      );
    }
    const key = `${ns}/${name}`;
    const uid = restore.metadata.uid ?? '';
    // A Restore deleted and made again under the same name must not reuse the old copy.
    if (this.fetched.has(key) && this.fetched.get(key)!.uid !== uid) await this.releaseFetched(key);
    let local: LocalImage = { path: image.path, transferMs: 0 };
    const kept = this.fetched.get(key);
    if (kept) local = kept.image;
    else if (image.node !== this.deps.nodeName && this.deps.fetchImage) {
      try {
        local = await this.deps.fetchImage(ckpt);
        this.fetched.set(key, { uid, image: local });
      } catch (err) {
        const reason = (err as { reason?: unknown }).reason;
        return fail(typeof reason === 'string' ? reason : 'TransferFailed', errorMessage(err));
      }
    }
    // What the image must be bound to: the Checkpoint's own metadata and the controller's record.
    let binding;
    try {
      binding = {
        namespace: ns,
        name: restore.spec.checkpointName,
        uid: ckpt.metadata.uid ?? '',
        podUid: sourceRecord(ckpt).uid,
      };
    } catch (err) {
      return fail('ImageNotBound', errorMessage(err));
    }
    const podName = restore.status?.restoredPod ?? '';
    let pod;
    try {
      // Only the containers that were captured get a table; the others run as they are.
      const captured = new Set(
        (ckpt.status?.containers ?? []).filter((c) => c.pid !== undefined).map((c) => c.name),
      );
      const target = await podTarget(this.deps.core, ns, podName, undefined);
      pod = { ...target, containers: target.containers.filter((c) => captured.has(c.name)) };
    } catch (err) {
      if (err instanceof PodProblem) return fail(err.reason, err.message);
      throw err;
    }
    await write((d) =>
      d.setCondition({
        type: CONDITIONS.Replayed,
        status: 'Unknown',
        reason: 'Replaying',
        message: `replaying into pod ${podName}`,
      }),
    );
    let outcome;
    let retry = false;
    try {
      outcome = await this.deps.engine.restoreInto({
        pod,
        imagePath: local.path,
        sourcePids: Object.fromEntries((ckpt.status?.containers ?? []).map((c) => [c.name, c.pid ?? 0])),
        sha256: image.sha256,
        binding,
        fds: restore.spec.fds ?? 'Program',
        listenFds: restore.spec.listenFds ?? false,
        policy: { rules: restore.spec.policy?.rules ?? [] },
        // Files in another pod are other inodes even when they are the same files.
        newContainer: pod.uid !== ckpt.status?.podUID,
      });
    } catch (err) {
      if (err instanceof NotReadyError) {
        // Give up once the launcher itself would have (its --timeout is 600 s by default).
        const since = Date.parse(
          findCondition(restore.status?.conditions, CONDITIONS.Replayed)?.lastTransitionTime ?? '',
        );
        if (Number.isNaN(since) || Date.now() - since < NOT_READY_LIMIT_MS) {
          retry = true;
          return { requeueAfterMs: 500 };
        }
      }
      return fail('ReplayFailed', errorMessage(err));
    } finally {
      // A fetched copy serves every NotReady retry of this Restore, then its one replay.
      if (!retry) await this.releaseFetched(key);
    }
    // The engine either restores the whole table (skipped fds are the policy's choice) or fails.
    const ok = outcome.failures.length === 0;
    await write((d) => {
      const s = d.status;
      s.fdsReplayed = outcome.fdsReplayed;
      s.failures = bounded(outcome.failures);
      s.durations = {
        replayMs: Math.round(outcome.durations.replayMs),
        ...(outcome.durations.replayedAt !== undefined
          ? { replayedAt: new Date(outcome.durations.replayedAt).toISOString() }
          : {}),
        ...(image.node !== this.deps.nodeName ? { transferMs: Math.round(local.transferMs) } : {}),
      };
      if (local.transfer) s.transfer = local.transfer;
      const skipped = outcome.failures.length ? `; ${outcome.failures.length} fd(s) skipped` : '';
      d.setCondition(
        ok
          ? {
              type: CONDITIONS.Replayed,
              status: 'True',
              reason: 'Replayed',
              message: `${outcome.fdsReplayed} fds replayed into pod ${podName}${skipped}`,
            }
          : {
              type: CONDITIONS.Replayed,
              status: 'False',
              reason: 'ReplayFailed',
              message: outcome.failures[0]?.message ?? 'replay failed',
            },
      );
    });
    this.deps.metrics?.restores.inc({ outcome: ok ? 'replayed' : 'failed' });
    this.deps.metrics?.fdsReplayed.inc(outcome.fdsReplayed);
    this.deps.metrics?.replaySeconds.observe(outcome.durations.replayMs / 1000);
    this.deps.events.record(
      restore,
      ok ? 'Normal' : 'Warning',
      ok ? 'Replayed' : 'ReplayFailed',
      `${outcome.fdsReplayed} fds replayed into pod ${podName} on ${this.deps.nodeName}`,
    );
    return {};
  }
}
