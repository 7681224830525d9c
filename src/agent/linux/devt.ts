/**
 * dev_t as the kernel encodes it for user space (glibc's gnu_dev_major, gnu_dev_minor,
 * gnu_dev_makedev): the minor's low 8 bits, the major's low 12, then the minor's upper 12.
 * The kernel's majors have 12 bits and its minors 20, so a real dev_t fits 32 bits; the
 * encoding's upper word (bigger majors) is kept, with divisions and products because JS
 * bit operators are 32-bit.
 */

/** The major number of a dev_t. */
export function devMajor(dev: number): number {
  return ((dev >>> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
}

/** The minor number of a dev_t. */
export function devMinor(dev: number): number {
  return (dev & 0xff) | ((dev >>> 12) & ~0xff);
}

/** The dev_t of major:minor, as stat(2) reports it (and /proc/PID/maps and mountinfo print its parts). */
export function makeDev(major: number, minor: number): number {
  return (minor & 0xff) + ((major & 0xfff) << 8) + (minor & ~0xff) * 2 ** 12 + (major & ~0xfff) * 2 ** 32;
}
