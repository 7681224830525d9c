/**
 * Rate limiters for the workqueue, after client-go's defaults: a per-item
 * exponential backoff (a key that keeps failing waits longer and longer, others
 * are not slowed) combined with a global token bucket (a burst of failures
 * across many keys cannot hammer the API server).
 */

/** Decides how long a failing key waits before its next try. */
export interface RateLimiter {
  /** Delay before the next try of `key`; counts one more failure. */
  when(key: string): number;
  /** The key succeeded: its backoff starts over. */
  forget(key: string): void;
  /** Failures counted for `key` since it last succeeded. */
  retries(key: string): number;
}

/** base·2^failures, capped. */
export class ItemExponentialLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly baseMs = 5,
    private readonly maxMs = 300_000,
  ) {}

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return Math.min(this.baseMs * 2 ** n, this.maxMs);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/** Token bucket over all keys: `qps` tokens a second, at most `burst` saved. */
export class BucketLimiter implements RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly qps = 10,
    private readonly burst = 100,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  when(): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
    // Reserve a token even if it is not there yet: the debt is the wait.
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }

  forget(): void {}

  retries(): number {
    return 0;
  }
}

/** The longest delay any of the limiters asks for. */
export class MaxOfLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    return Math.max(...this.limiters.map((l) => l.when(key)));
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  retries(key: string): number {
    return Math.max(...this.limiters.map((l) => l.retries(key)));
  }
}

/** client-go's default controller rate limiter. */
export function defaultRateLimiter(): RateLimiter {
  return new MaxOfLimiter(new ItemExponentialLimiter(5, 300_000), new BucketLimiter(10, 100));
}
