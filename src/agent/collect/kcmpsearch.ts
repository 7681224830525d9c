/**
 * Read-only lookup of "is this fd the same open file as one of the pod's?":
 * the pod's files bucketed by key, each bucket sorted once in kcmp order, then
 * one binary search per outside candidate. Unlike capture's KcmpIndex, outside
 * fds are never inserted, so buckets stay the pod's size however many
 * candidates the host has (thousands of independent opens of /etc/hosts).
 */
import { existsSync } from 'node:fs';
import { compareFiles } from '../linux/kcmp.js';

interface Entry {
  pid: number;
  fd: number;
  objref: number;
}

function order(a: { pid: number; fd: number }, b: { pid: number; fd: number }): number {
  return compareFiles(a.pid, a.fd, b.pid, b.fd);
}

/** Pod files bucketed by key, each bucket in kcmp order; see the module comment. */
export class KcmpSearch {
  private readonly buckets = new Map<string, Entry[]>();
  private sorted = false;
  /** kcmp calls made by lookups, for the benchmark. */
  comparisons = 0;
  /** Candidates that could not be compared (not vanished), for the report's warnings. */
  readonly failures: string[] = [];

  add(key: string, pid: number, fd: number, objref: number): void {
    const b = this.buckets.get(key);
    if (b) b.push({ pid, fd, objref });
    else this.buckets.set(key, [{ pid, fd, objref }]);
    this.sorted = false;
  }

  /**
   * Sorts a bucket of pod files in kcmp order. An unfrozen pod may close an fd after
   * capture: such entries are dropped (and said in the warnings) instead of failing.
   */
  private sortBucket(b: Entry[]): void {
    for (;;) {
      try {
        b.sort(order);
        return;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code !== 'ESRCH' && code !== 'EBADF') throw err;
        const gone = b.filter((e) => !existsSync(`/proc/${e.pid}/fd/${e.fd}`));
        if (gone.length === 0) throw err;
        for (const e of gone)
          this.failures.push(`pid ${e.pid} fd ${e.fd}: closed after capture, not compared`);
        b.splice(0, b.length, ...b.filter((e) => !gone.includes(e)));
      }
    }
  }

  /** The objref of the pod file that (pid, fd) is, or undefined. Vanished fds are "not found". */
  find(key: string, pid: number, fd: number): number | undefined {
    if (!this.sorted) {
      for (const b of this.buckets.values()) if (b.length > 1) this.sortBucket(b);
      this.sorted = true;
    }
    const bucket = this.buckets.get(key);
    if (!bucket) return undefined;
    let lo = 0;
    let hi = bucket.length;
    try {
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        this.comparisons++;
        const c = order({ pid, fd }, bucket[mid]!);
        if (c === 0) return bucket[mid]!.objref;
        if (c < 0) hi = mid;
        else lo = mid + 1;
      }
    } catch (err) {
      // Gone (ESRCH, EBADF) means it holds nothing any more; anything else
      // (EPERM) means we could not tell, which the report must say.
      const code = (err as { code?: string }).code;
      if (code !== 'ESRCH' && code !== 'EBADF')
        this.failures.push(`pid ${pid} fd ${fd}: ${(err as Error).message}`);
      return undefined;
    }
    return undefined;
  }
}
