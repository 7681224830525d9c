import { constants } from 'node:os';

const errnoNames: Map<number, string> = new Map(
  Object.entries(constants.errno).map(([name, value]) => [value, name] as [number, string]),
);

/** The symbolic name of an errno value (`ENOENT`), or `E<n>` when unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** The errno value of a symbolic name, for comparisons (`errnoValue('ESRCH')`). */
export function errnoValue(name: keyof typeof constants.errno): number {
  return constants.errno[name];
}

/**
 * A failed system call, named the way the style guide asks:
 * `pidfd_getfd(pid 812, fd 7): EBADF`.
 */
export class SyscallError extends Error {
  override readonly name = 'SyscallError';
  /** Symbolic errno (`EBADF`). Same field name as Node's own fs errors. */
  readonly code: string;

  constructor(
    readonly syscall: string,
    readonly errno: number,
    readonly object: string,
  ) {
    super(`${syscall}(${object}): ${errnoName(errno)}`);
    this.code = errnoName(errno);
  }
}

/** True when `err` says the process is gone (ESRCH), or a /proc entry vanished (ENOENT). */
export function isGone(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ESRCH' || code === 'ENOENT';
}
