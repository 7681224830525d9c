/**
 * Finds objects the kernel says are the same (kcmp == 0) without comparing
 * all pairs: candidates are first bucketed by a cheap key (st_dev:st_ino for
 * open files), and each bucket is kept sorted by kcmp's own ordering, so a
 * lookup is a binary search (CRIU's kcmp-ids does the same with a tree).
 */
import { kcmp } from '../linux/kcmp.js';

interface Member {
  pid: number;
  idx: number;
  objref: number;
}

export class KcmpIndex {
  private readonly buckets = new Map<string, Member[]>();
  /** kcmp calls made, for benchmarks and tests of the O(n log n) claim. */
  comparisons = 0;

  constructor(private readonly kcmpType: number) {}

  /**
   * The objref of an object already indexed that is the same as (pid, idx), or
   * undefined after inserting it with `newObjref()` as its objref.
   */
  findOrAdd(
    key: string,
    pid: number,
    idx: number,
    newObjref: () => number,
  ): { objref: number; found: boolean } {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = [];
      this.buckets.set(key, bucket);
    }
    let lo = 0;
    let hi = bucket.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = bucket[mid]!;
      this.comparisons++;
      const order = kcmp(pid, m.pid, this.kcmpType, idx, m.idx);
      if (order === 0) return { objref: m.objref, found: true };
      // kcmp returns 1 when the first object sorts before the second, 2 after.
      if (order === 1) hi = mid;
      else if (order === 2) lo = mid + 1;
      else throw new Error(`kcmp(pid ${pid} #${idx}, pid ${m.pid} #${m.idx}) gave no order (${order})`);
    }
    const objref = newObjref();
    bucket.splice(lo, 0, { pid, idx, objref });
    return { objref, found: false };
  }
}
