/**
 * What a saved path must look like. Capture stores what /proc/PID/fd/N reads:
 * the kernel's own path of the open file, absolute, without `.`/`..`
 * components, doubled or trailing slashes. A path that is not such a path
 * did not come from a capture, and opening it could reach another file
 * (`/var/log/../../etc/shadow`); the reader and replay refuse it.
 */

/** Why an absolute `path` is not normalized, or undefined when it is. */
export function unnormalized(path: string): string | undefined {
  if (path === '/') return undefined;
  if (path.includes('//')) return 'a doubled /';
  if (path.endsWith('/')) return 'a trailing /';
  // The first `.` or `..` component after a slash; a scan, not a split: replay and the
  // reader ask this of every path of an image.
  const dots = DOT_COMPONENT.exec(path);
  return dots ? `a ${dots[1]} component` : undefined;
}

const DOT_COMPONENT = /\/(\.\.?)(?=\/|$)/;

/** File types whose path is a file system path that replay opens. */
export const PATH_TYPES: readonly string[] = ['regular', 'directory', 'fifo'];
