/** Giving a child process its input, for the places that run kubectl and helm. */
import type { Writable } from 'node:stream';

/**
 * Writes `input` to a child's stdin and closes it. A command that reads no input (kubectl
 * wait) may exit before its stdin is closed: that EPIPE is not its failure, which its exit
 * status reports; any other error on the pipe goes to `onError`.
 */
export function endInput(
  stdin: Writable | null | undefined,
  input: string,
  onError: (err: Error) => void,
): void {
  stdin?.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') onError(err);
  });
  stdin?.end(input);
}
