/**
 * The controller's record of a checkpointed pod (SOURCE_POD_ANNOTATION on the
 * Checkpoint), read back by the controller when it builds a restored pod and by the
 * agent when it checks which pod an image belongs to. Here, below both, so that
 * neither imports the other.
 */
import { SOURCE_POD_ANNOTATION } from './names.js';
import type { SourcePodRecord } from './names.js';
import type { Checkpoint } from './types.js';

/** Why a restored pod cannot be built (a Restore condition reason and message). */
export class RestorePodError extends Error {
  override readonly name = 'RestorePodError';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** The controller's record of the source pod, or a RestorePodError saying why there is none. */
export function sourceRecord(ckpt: Checkpoint): SourcePodRecord {
  const raw = ckpt.metadata.annotations?.[SOURCE_POD_ANNOTATION];
  if (raw === undefined)
    throw new RestorePodError(
      'NoSourceRecord',
      `checkpoint ${ckpt.metadata.name}: no ${SOURCE_POD_ANNOTATION} annotation`,
    );
  try {
    const rec = JSON.parse(raw) as SourcePodRecord;
    if (typeof rec.uid !== 'string' || !Array.isArray(rec.containers)) throw new Error('bad shape');
    return rec;
  } catch (err) {
    throw new RestorePodError(
      'NoSourceRecord',
      `checkpoint ${ckpt.metadata.name}: bad ${SOURCE_POD_ANNOTATION}: ${(err as Error).message}`,
    );
  }
}
