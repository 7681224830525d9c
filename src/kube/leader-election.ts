/**
 * Leader election over a coordination.k8s.io/v1 Lease, as client-go's
 * leaderelection does it: the holder renews the lease every retry period; a
 * candidate takes it over once renewTime + leaseDuration has passed. Every
 * write carries the lease's resourceVersion, so two candidates racing for an
 * expired lease cannot both win (one gets 409). A leader that cannot renew
 * within the renew deadline steps down, and the process should then exit:
 * another replica may already act.
 */
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import { V1MicroTime } from '@kubernetes/client-node';
import type { Logger } from './log.js';
import { errorMessage, isConflict, isNotFound } from './errors.js';

export interface LeaderElectionOptions {
  api: CoordinationV1Api;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log: Logger;
}

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private lastRenew = 0;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private readonly leaseSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;

  constructor(private readonly options: LeaderElectionOptions) {
    this.leaseSeconds = options.leaseDurationSeconds ?? 15;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryMs = options.retryPeriodMs ?? 2_000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaign until leadership is acquired (resolves true) or stop() is called
   * (resolves false). After that, keep renewing in the background; `onLost`
   * fires once if the lease is lost.
   */
  async acquire(onLost: () => void): Promise<boolean> {
    while (!this.stopped) {
      if (await this.tryAcquireOrRenew()) {
        this.leading = true;
        this.lastRenew = Date.now();
        this.options.log.info(`leader election: ${this.options.identity} is the leader`);
        this.scheduleRenew(onLost);
        return true;
      }
      await this.sleep(this.retryMs);
    }
    return false;
  }

  private scheduleRenew(onLost: () => void): void {
    this.timer = setTimeout(() => {
      void this.tryAcquireOrRenew().then((ok) => {
        if (this.stopped) return;
        if (ok) this.lastRenew = Date.now();
        else if (Date.now() - this.lastRenew > this.renewDeadlineMs) {
          this.leading = false;
          this.options.log.error(
            `leader election: lost the lease ${this.options.namespace}/${this.options.name}`,
          );
          onLost();
          return;
        }
        this.scheduleRenew(onLost);
      });
    }, this.retryMs);
  }

  /** Stop campaigning or renewing; a leader releases the lease so that a successor need not wait. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wake?.();
    if (this.leading) {
      this.leading = false;
      await this.release();
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** One round of client-go's tryAcquireOrRenew. Never throws. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name, identity, log } = this.options;
    const now = new V1MicroTime();
    try {
      let lease: V1Lease;
      try {
        lease = await api.readNamespacedLease({ name, namespace });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await api.createNamespacedLease({
          namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: this.leaseSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        return true;
      }
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
      const expired = renewed + (spec.leaseDurationSeconds ?? this.leaseSeconds) * 1000 < now.getTime();
      if (holder !== identity && holder !== '' && !expired) return false;
      const takeover = holder !== identity;
      await api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          ...lease,
          spec: {
            ...spec,
            holderIdentity: identity,
            leaseDurationSeconds: this.leaseSeconds,
            renewTime: now,
            acquireTime: takeover ? now : spec.acquireTime,
            leaseTransitions: (spec.leaseTransitions ?? 0) + (takeover ? 1 : 0),
          },
        },
      });
      return true;
    } catch (err) {
      if (!isConflict(err)) log.warn(`leader election: ${errorMessage(err)}`);
      return false;
    }
  }

  private async release(): Promise<void> {
    const { api, namespace, name, identity, log } = this.options;
    try {
      const lease = await api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== identity) return;
      await api.replaceNamespacedLease({
        name,
        namespace,
        body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } },
      });
    } catch (err) {
      log.warn(`leader election: release: ${errorMessage(err)}`);
    }
  }
}
