/**
 * Text of an image as `inspect` and `diff` print it. An image is untrusted
 * input (paths, comm and argv are whatever the captured process chose): what
 * reaches a terminal is escaped, and what grows with the image grows at most
 * linearly in the output.
 */

/** How many holders of one open file a line lists before "… and N more". */
export const LIST_CAP = 8;

/**
 * Control characters escaped as `\xNN`: C0, DEL and C1 (0x80–0x9f; 0x9b is a
 * one-byte CSI to many terminals), which would break lines or drive the terminal.
 */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** A string quoted as JSON does, then with the controls JSON leaves raw (DEL, C1) escaped too. */
export function quoted(s: string): string {
  return printable(JSON.stringify(s));
}

/**
 * The first `cap` items of `items` that `keep` lets through, joined with ", ",
 * then "… and N more" up to `total` (how many `keep` lets through, which the
 * caller knows). It stops after `cap` kept items: when `keep` refuses few of
 * them (one fd's own entry), a line costs O(cap) however many share the file.
 */
export function someOf<T>(
  items: readonly T[],
  total: number,
  show: (item: T) => string,
  keep: (item: T) => boolean = () => true,
  cap = LIST_CAP,
): string {
  const shown: string[] = [];
  for (const item of items) {
    if (shown.length === cap) break;
    if (keep(item)) shown.push(show(item));
  }
  return shown.join(', ') + (total > shown.length ? ` … and ${total - shown.length} more` : '');
}

/** An ISO time for a header time in ms, or the number as it is when Date cannot hold it (±8.64e15 ms). */
export function isoTime(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms);
}
