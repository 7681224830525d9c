/**
 * A loop: an informer feeding a keyed workqueue, for a reconciler to drain
 * (runWorkers). Every add, update and delete enqueues the object's key; the
 * reconciler reads the current state, so the event itself is not kept.
 */
import { objectKey } from './informer.js';
import type { Informer, Keyed } from './informer.js';
import { WorkQueue } from './workqueue.js';

/** A queue fed by an informer, drained by a reconciler. */
export interface Loop<T extends Keyed> {
  informer: Informer<T>;
  queue: WorkQueue;
  done?: Promise<void>;
}

/** A new queue fed by every event of `informer` (not started: start the informer yourself). */
export function loopFor<T extends Keyed>(informer: Informer<T>): Loop<T> {
  const queue = new WorkQueue();
  const enqueue = (obj: T): void => queue.add(objectKey(obj));
  informer.on({ add: enqueue, update: (_old, obj) => enqueue(obj), delete: enqueue });
  return { informer, queue };
}
