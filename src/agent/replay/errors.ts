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
