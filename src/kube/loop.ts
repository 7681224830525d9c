/**
 * A loop: an informer feeding a keyed workqueue, for a reconciler to drain
 * (runWorkers). Every add, update and delete enqueues the object's key; the
 * reconciler reads the current state, so the event itself is not kept.
 */
import { objectKey } from './informer.js';
import type { Informer, Keyed } from './informer.js';
import type { Reconciler } from './reconciler.js';
import { WorkQueue } from './workqueue.js';

/** A queue fed by an informer: every change of an object queues its key. */
export interface Loop<T extends Keyed> {
  informer: Informer<T>;
  queue: WorkQueue;
}

/** A new queue fed by every event of `informer` (not started: start the informer yourself). */
export function loopFor<T extends Keyed>(informer: Informer<T>): Loop<T> {
  const queue = new WorkQueue();
  const enqueue = (obj: T): void => queue.add(objectKey(obj));
  informer.on({ add: enqueue, update: (_old, obj) => enqueue(obj), delete: enqueue });
  return { informer, queue };
}

/** A reconciler and the queue that feeds it, registered together (never paired by position). */
export interface QueueWorker {
  queue: WorkQueue;
  reconciler: Reconciler;
}

/**
 * What a set of reconcilers needs running: the informers to start (each once, whatever
 * number of queues it feeds) and the workers to run once every cache is filled.
 */
export interface Controllers {
  informers: Informer<Keyed>[];
  workers: QueueWorker[];
}
