/**
 * Names that embed a number the kernel assigns (`pipe:[4026]`, `socket:[91]`): a restore
 * makes new objects with new numbers, so comparisons mask the number.
 */
export function maskInodeNumber(path: string): string {
  return path.replace(/:\[\d+\]$/, ':[*]');
}
