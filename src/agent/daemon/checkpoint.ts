/**
 * The agent's Checkpoint reconciler. It acts only on Checkpoints the
 * controller scheduled to this node, once: capture (through the NodeEngine),
 * then write the agent-owned status (Captured, LeakFree, counts, leaks,
 * problems, image, durations). On deletion it deletes the image and clears
 * status.image, which lets the controller drop the finalizer.
 */
import { join, resolve } from 'node:path';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { Checkpoint, Leak } from '../../api/index.js';
import { CHECKPOINT, CONDITIONS, bounded, findCondition, holderPlace, isTrue } from '../../api/index.js';
import type { EventRecorder } from '../../kube/events.js';
import type { ResourceClient } from '../../kube/client.js';
import type { Reconciler, Result } from '../../kube/reconciler.js';
import { errorMessage, isNotFound } from '../../kube/errors.js';
import { splitKey } from '../../kube/informer.js';
import type { StatusDraft } from '../../kube/status.js';
import { updateStatus } from '../../kube/status.js';
import type { CheckpointPodOutcome, NodeEngine } from './engine.js';
import type { AgentMetrics } from './metrics.js';
import { PodProblem, podGoneSince, podTarget } from './pods.js';

export interface AgentDeps {
  nodeName: string;
  /** Images go under <dataDir>/images/<namespace>/. */
  dataDir: string;
  engine: NodeEngine;
  core: CoreV1Api;
  events: EventRecorder;
  metrics?: AgentMetrics;
  now?: () => Date;
  /**
   * Brings an image captured on another node here (src/agent/migration):
   * throws an Error with a `reason` (TransferError) when it cannot.
   */
  fetchImage?: (ckpt: Checkpoint) => Promise<{
    path: string;
    transferMs: number;
    release?: () => Promise<void>;
    transfer?: { bytes: number; attempts: number };
  }>;
}

/** A status write of the Checkpoint being captured: `change` applied to a fresh read. */
type StatusWrite = (change: (d: StatusDraft<Checkpoint>, obj: Checkpoint) => void) => Promise<Checkpoint>;

/** The Checkpoint captured is no longer the one under its name (deleted and made again). */
class CheckpointGone extends Error {
  override readonly name = 'CheckpointGone';
}

/** Where the image of a Checkpoint goes on this node. */
export function imagePathFor(dataDir: string, ckpt: Checkpoint): string {
  return join(
    dataDir,
    'images',
    ckpt.metadata.namespace ?? 'default',
    `${ckpt.metadata.name ?? ''}-${ckpt.metadata.uid ?? ''}.fdckpt`,
  );
}

/** One line naming the first leak's two holders, for the LeakFree message. */
export function describeLeaks(leaks: readonly Leak[]): string {
  const first = leaks[0];
  if (!first) return 'no reference crosses the pod boundary';
  const h = (x: Leak['inside']): string =>
    `pid ${x.pid} (${x.comm}, ${holderPlace(x)})${x.fd !== undefined ? ` fd ${x.fd}` : ''}`;
  const more = leaks.length > 1 ? `; and ${leaks.length - 1} more` : '';
  return `${first.type} ${first.object} is held inside by ${h(first.inside)} and outside by ${h(first.outside)}${more}`;
}

export class AgentCheckpointReconciler implements Reconciler {
  readonly kind = CHECKPOINT.kind;

  constructor(
    private readonly checkpoints: ResourceClient<Checkpoint>,
    private readonly deps: AgentDeps,
  ) {}

  async reconcile(key: string): Promise<Result> {
    const { namespace, name } = splitKey(key);
    const ckpt = await this.checkpoints.read(namespace, name);
    if (!ckpt) return {}; // gone: nothing to reconcile
    const status = ckpt.status ?? {};
    if (ckpt.metadata.deletionTimestamp) return this.deleteImage(ckpt);
    if (status.nodeName !== this.deps.nodeName || !isTrue(status.conditions, CONDITIONS.Scheduled)) return {};
    const captured = findCondition(status.conditions, CONDITIONS.Captured);
    if (captured && captured.status !== 'Unknown') return {};
    await this.capture(ckpt);
    return {};
  }

  private async deleteImage(ckpt: Checkpoint): Promise<Result> {
    const image = ckpt.status?.image;
    if (!image || image.node !== this.deps.nodeName) return {};
    // Delete only what this agent wrote for this Checkpoint: status.image.path is
    // anyone's to write, and a path it does not own must neither be deleted nor
    // keep the Checkpoint in Deleting.
    const own = resolve(imagePathFor(this.deps.dataDir, ckpt));
    await this.deps.engine.deleteImage(own);
    this.deps.metrics?.imagesDeleted.inc();
    await updateStatus(this.checkpoints, ckpt.metadata.namespace ?? '', ckpt.metadata.name ?? '', (d) => {
      delete d.status.image;
    });
    if (resolve(image.path) !== own) {
      this.deps.events.record(
        ckpt,
        'Warning',
        'ImagePathRefused',
        `status.image.path ${image.path} is not this Checkpoint's image ${own}: left alone; deleted ${own} on ${image.node}`,
      );
    } else this.deps.events.record(ckpt, 'Normal', 'ImageDeleted', `deleted ${own} on ${image.node}`);
    return {};
  }

  private async capture(ckpt: Checkpoint): Promise<void> {
    const ns = ckpt.metadata.namespace ?? '';
    const name = ckpt.metadata.name ?? '';
    // Conditions say which generation was captured: the one read before the work, not a later one.
    const write: StatusWrite = (change) =>
      updateStatus(this.checkpoints, ns, name, change, {
        generation: ckpt.metadata.generation,
        now: () => this.now(),
      });
    const fail = async (reason: string, message: string): Promise<void> => {
      await write((d) => d.setCondition({ type: CONDITIONS.Captured, status: 'False', reason, message }));
      this.deps.metrics?.captures.inc({ outcome: 'failed' });
      this.deps.events.record(ckpt, 'Warning', reason, message);
    };
    let pod;
    try {
      pod = await podTarget(this.deps.core, ns, ckpt.spec.podName, ckpt.status?.podUID, ckpt.spec.containers);
    } catch (err) {
      if (err instanceof PodProblem) return fail(err.reason, err.message);
      throw err;
    }
    await write((d) =>
      d.setCondition({
        type: CONDITIONS.Captured,
        status: 'Unknown',
        reason: 'Capturing',
        message: `capturing on ${this.deps.nodeName}`,
      }),
    );
    const dryRun = ckpt.spec.dryRun ?? false;
    let outcome;
    try {
      outcome = await this.deps.engine.checkpointPod({
        pod,
        leakPolicy: ckpt.spec.leakPolicy ?? 'Fail',
        afterCapture: ckpt.spec.afterCapture ?? 'LeaveRunning',
        ignore: { types: ckpt.spec.ignore?.types ?? [], paths: ckpt.spec.ignore?.paths ?? [] },
        dryRun,
        imagePath: dryRun ? undefined : imagePathFor(this.deps.dataDir, ckpt),
        binding: { namespace: ns, name, uid: ckpt.metadata.uid ?? '', podUid: pod.uid },
      });
    } catch (err) {
      const gone = await podGoneSince(this.deps.core, pod);
      if (gone) return fail(gone.reason, `${gone.message} (${errorMessage(err)})`);
      return fail('CaptureFailed', errorMessage(err));
    }
    try {
      await this.report(ckpt, outcome, write, dryRun);
    } catch (err) {
      // Deleted (or made again under its name) while we captured: nobody will ever ask
      // for this image, and the controller has already let the Checkpoint go.
      if (outcome.image && (isNotFound(err) || err instanceof CheckpointGone)) {
        await this.deps.engine.deleteImage(outcome.image.path);
        this.deps.events.record(
          ckpt,
          'Normal',
          'ImageDeleted',
          `checkpoint deleted during capture; image ${outcome.image.path} deleted`,
        );
        return;
      }
      throw err;
    }
  }

  /** Writes the capture's outcome into status, only onto the Checkpoint that was captured. */
  private async report(
    ckpt: Checkpoint,
    outcome: CheckpointPodOutcome,
    write: StatusWrite,
    dryRun: boolean,
  ): Promise<void> {
    const ns = ckpt.metadata.namespace ?? '';
    const name = ckpt.metadata.name ?? '';
    const totalFds = outcome.containers.reduce((n, c) => n + c.fds, 0);
    const totalProcesses = outcome.containers.reduce((n, c) => n + c.processes, 0);
    const refused = !dryRun && outcome.problems.length > 0;
    await write((d, obj) => {
      const s = d.status;
      if (obj.metadata.uid !== ckpt.metadata.uid)
        throw new CheckpointGone(`checkpoint ${ns}/${name} was made again`);
      s.containers = outcome.containers;
      s.totalFds = totalFds;
      s.totalProcesses = totalProcesses;
      s.leaks = bounded(outcome.leaks);
      s.problems = bounded(outcome.problems);
      s.durations = {
        freezeMs: Math.round(outcome.durations.freezeMs),
        captureMs: Math.round(outcome.durations.captureMs),
        ...(outcome.durations.frozenAt !== undefined
          ? { frozenAt: new Date(outcome.durations.frozenAt).toISOString() }
          : {}),
      };
      if (outcome.image) s.image = { node: this.deps.nodeName, ...outcome.image };
      d.setCondition(
        !outcome.leaksChecked
          ? {
              type: CONDITIONS.LeakFree,
              status: 'Unknown',
              reason: 'NotChecked',
              message: 'leakPolicy Ignore: leaks were not looked for',
            }
          : {
              type: CONDITIONS.LeakFree,
              status: outcome.leaks.length === 0 ? 'True' : 'False',
              reason: outcome.leaks.length === 0 ? 'NoLeaks' : 'LeaksFound',
              message: describeLeaks(outcome.leaks),
            },
      );
      if (refused) {
        const first = outcome.problems[0]!;
        d.setCondition({
          type: CONDITIONS.Captured,
          status: 'False',
          reason: 'UnsupportedFds',
          message: `${outcome.problems.length} fd(s) cannot be restored; first: ${first.message}`,
        });
      } else {
        const what = outcome.image
          ? `image ${outcome.image.path} (${outcome.image.size} bytes)`
          : dryRun
            ? 'dry run, no image'
            : 'no image (leaks)';
        d.setCondition({
          type: CONDITIONS.Captured,
          status: 'True',
          reason: dryRun ? 'DryRun' : 'Captured',
          message: `${totalFds} fds in ${totalProcesses} processes; ${what}`,
        });
      }
    });
    const m = this.deps.metrics;
    m?.captures.inc({ outcome: refused ? 'refused' : 'captured' });
    m?.freezeSeconds.observe(outcome.durations.freezeMs / 1000);
    m?.captureSeconds.observe(outcome.durations.captureMs / 1000);
    m?.fdsCaptured.inc(totalFds);
    for (const leak of outcome.leaks) m?.leaks.inc({ type: leak.type });
    this.deps.events.record(
      ckpt,
      refused ? 'Warning' : 'Normal',
      refused ? 'UnsupportedFds' : 'Captured',
      `${totalFds} fds in ${totalProcesses} processes on ${this.deps.nodeName}`,
    );
    if (outcome.leaks.length > 0)
      this.deps.events.record(ckpt, 'Warning', 'LeaksFound', describeLeaks(outcome.leaks));
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }
}
