/**
 * Status writes by the agent: read, change only the fields the agent owns,
 * write with the resourceVersion just read; on 409 (the controller wrote in
 * between) read again and redo the change. Nothing is written when nothing
 * changed.
 */
import type { ResourceClient, Resource } from '../../controller/kube.js';
import { clone, same } from '../../controller/kube.js';
import { isConflict } from '../../controller/runtime/errors.js';

const ATTEMPTS = 8;

/**
 * Apply `change` to a fresh copy of the object's status and write it.
 * Returns the object as written (or as read, when unchanged).
 */
export async function updateStatus<T extends Resource>(
  client: ResourceClient<T>,
  namespace: string,
  name: string,
  change: (status: NonNullable<T['status']>, obj: T) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const obj = await client.get(namespace, name);
    const status = clone(obj.status ?? {}) as NonNullable<T['status']>;
    change(status, obj);
    if (same(obj.status ?? {}, status)) return obj;
    try {
      return await client.replaceStatus({ ...clone(obj), status });
    } catch (err) {
      if (!isConflict(err) || attempt >= ATTEMPTS) throw err;
    }
  }
}
