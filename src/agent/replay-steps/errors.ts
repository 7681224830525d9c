/** A restore failure that names the fd and why: `fd 7 (/var/log/app.log): ENOENT`. */
export class ReplayError extends Error {
  override readonly name = 'ReplayError';
  /** The process that was being restored (and has been killed), when one had been started. */
  targetPid?: number;

  constructor(
    readonly fd: number | undefined,
    readonly path: string,
    readonly reason: string,
  ) {
    super(fd === undefined ? `${path}: ${reason}` : `fd ${fd} (${path}): ${reason}`);
  }
}

/** How many refused fds a ReplayRefusals message names (the list itself keeps them all). */
const NAMED_IN_MESSAGE = 20;

/**
 * Every fd a restore plan refuses, found in one pass over the table, so that a
 * user fixes them all at once instead of one per attempt. It is a ReplayError
 * (the first fd) for callers that report one.
 */
export class ReplayRefusals extends ReplayError {
  constructor(readonly all: readonly ReplayError[]) {
    super(all[0]!.fd, all[0]!.path, all[0]!.reason);
    if (all.length > 1) {
      const named = all.slice(0, NAMED_IN_MESSAGE).map((e) => e.message);
      const more = all.length > NAMED_IN_MESSAGE ? `; and ${all.length - NAMED_IN_MESSAGE} more` : '';
      this.message = `${all.length} fds cannot be restored: ${named.join('; ')}${more}`;
    }
  }
}

/** The refusals an error stands for: each of a ReplayRefusals, or the one ReplayError. */
export function refusalsOf(err: ReplayError): readonly ReplayError[] {
  return err instanceof ReplayRefusals ? err.all : [err];
}
