/**
 * Kubernetes Events for transitions, so that `kubectl describe` tells the
 * story. An event that cannot be written is logged, never fatal: events are
 * best effort by design.
 */
import type { CoreV1Api } from '@kubernetes/client-node';
import type { ObjectMeta } from '../api/index.js';
import { API_VERSION } from '../api/index.js';
import type { Logger } from './log.js';
import { errorMessage } from './errors.js';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorder {
  record(
    /** apiVersion: default fdckpt.io's; core objects (a Pod, a Node) give 'v1'. */
    obj: { apiVersion?: string; kind?: string; metadata: ObjectMeta },
    type: EventType,
    reason: string,
    message: string,
  ): void;
}

/** Records into the API server as core/v1 Events from `component`. */
export function apiEventRecorder(
  core: CoreV1Api,
  component: string,
  log: Logger,
  host?: string,
): EventRecorder {
  return {
    record(obj, type, reason, message) {
      const ns = obj.metadata.namespace ?? 'default';
      const now = new Date();
      core
        .createNamespacedEvent({
          namespace: ns,
          body: {
            metadata: { generateName: `${obj.metadata.name ?? 'fdckpt'}.`, namespace: ns },
            involvedObject: {
              apiVersion: obj.apiVersion ?? API_VERSION,
              kind: obj.kind,
              name: obj.metadata.name,
              namespace: ns,
              uid: obj.metadata.uid,
              resourceVersion: obj.metadata.resourceVersion,
            },
            type,
            reason,
            message: message.slice(0, 1024),
            source: { component, host },
            reportingComponent: `fdckpt.io/${component}`,
            reportingInstance: host ?? component,
            firstTimestamp: now,
            lastTimestamp: now,
            count: 1,
          },
        })
        .catch((err: unknown) =>
          log.warn(`event ${reason} for ${ns}/${obj.metadata.name}: ${errorMessage(err)}`),
        );
    },
  };
}

/** Keeps events in memory (tests assert on them). */
export class MemoryEventRecorder implements EventRecorder {
  readonly events: { name: string; kind?: string; type: EventType; reason: string; message: string }[] = [];

  record(
    obj: { kind?: string; metadata: ObjectMeta },
    type: EventType,
    reason: string,
    message: string,
  ): void {
    this.events.push({ name: obj.metadata.name ?? '', kind: obj.kind, type, reason, message });
  }
}
