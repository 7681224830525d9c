/**
 * A reader that closes early (`fdckpt inspect --json img | head -c 10`) is not an
 * error of ours: end quietly, as a C program killed by SIGPIPE would, instead of
 * Node's unhandled 'error' event and its stack trace. Node ignores SIGPIPE, so the
 * write fails with EPIPE instead of killing us; we exit with the status a shell
 * reports for a program that SIGPIPE killed.
 */

/** 128 + SIGPIPE (13): what `$?` shows for `yes | head -1`'s writer. */
export const EXIT_BROKEN_PIPE = 128 + 13;

/** Installs the handlers on stdout and stderr (the CLI's entry point calls it once). */
export function endQuietlyOnBrokenPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      // 'exit' handlers still run: an emergency thaw (cgroup/freeze.ts) is not skipped.
      process.exit(EXIT_BROKEN_PIPE);
    });
  }
}
