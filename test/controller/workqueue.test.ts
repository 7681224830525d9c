import { describe, expect, it } from '@jest/globals';
import { WorkQueue } from '../../src/kube/workqueue.js';
import { BucketLimiter, ItemExponentialLimiter, MaxOfLimiter } from '../../src/kube/rate-limiter.js';
import { processOne } from '../../src/kube/reconciler.js';
import { TerminalError } from '../../src/kube/errors.js';
import { silentLogger } from '../../src/kube/log.js';

describe('WorkQueue', () => {
  it('stores a queued key once however often it is added', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    q.shutDown();
  });

  it('never hands a key in flight to a second worker, and requeues it when done if re-added', async () => {
    const q = new WorkQueue();
    q.add('a');
    const first = await q.get();
    q.add('a');
    expect(q.length).toBe(0);
    const second = q.get();
    let got: string | undefined;
    void second.then((k) => (got = k));
    await Promise.resolve();
    expect(got).toBeUndefined();
    q.done(first!);
    expect(await second).toBe('a');
    q.done('a');
    expect(q.length).toBe(0);
    q.shutDown();
  });

  it('a waiting getter gets a key added later, and undefined at shutdown', async () => {
    const q = new WorkQueue();
    const pending = q.get();
    q.add('x');
    expect(await pending).toBe('x');
    const last = q.get();
    q.shutDown();
    expect(await last).toBeUndefined();
    q.add('y');
    expect(q.length).toBe(0);
  });

  it('addAfter keeps the earliest deadline per key', async () => {
    const q = new WorkQueue();
    q.addAfter('k', 60_000);
    q.addAfter('k', 1);
    expect(await q.get()).toBe('k');
    q.done('k');
    q.shutDown();
  });
});

describe('rate limiters', () => {
  it('per-item backoff doubles per failure, caps, and is forgotten on success', () => {
    const l = new ItemExponentialLimiter(5, 100);
    expect([l.when('a'), l.when('a'), l.when('a'), l.when('a'), l.when('a'), l.when('a')]).toEqual([
      5, 10, 20, 40, 80, 100,
    ]);
    expect(l.when('b')).toBe(5);
    expect(l.retries('a')).toBe(6);
    l.forget('a');
    expect(l.when('a')).toBe(5);
  });

  it('the global bucket lets a burst through, then spaces tries at qps', () => {
    const now = 1_000_000;
    const l = new BucketLimiter(10, 3, () => now);
    expect([l.when(), l.when(), l.when()]).toEqual([0, 0, 0]);
    expect(l.when()).toBe(100);
    expect(l.when()).toBe(200);
  });

  it('the combination takes the longer delay', () => {
    const now = 0;
    const l = new MaxOfLimiter(new ItemExponentialLimiter(5, 1000), new BucketLimiter(1, 1, () => now));
    expect(l.when('a')).toBe(5);
    expect(l.when('b')).toBe(1000);
  });
});

describe('processOne (error model)', () => {
  const options = { log: silentLogger };

  it('success forgets the backoff and honours requeueAfterMs', async () => {
    const q = new WorkQueue();
    q.limiter.when('k');
    await processOne(q, { kind: 'T', reconcile: () => Promise.resolve({ requeueAfterMs: 1 }) }, 'k', options);
    expect(q.retries('k')).toBe(0);
    expect(await q.get()).toBe('k');
    q.shutDown();
  });

  it('a thrown error is retried with growing backoff', async () => {
    const q = new WorkQueue(new ItemExponentialLimiter(1, 10));
    const failing = {
      kind: 'T',
      reconcile: (): Promise<never> => Promise.reject(new Error('boom')),
    };
    await processOne(q, failing, 'k', options);
    expect(q.retries('k')).toBe(1);
    expect(await q.get()).toBe('k');
    await processOne(q, failing, 'k', options);
    expect(q.retries('k')).toBe(2);
    q.shutDown();
  });

  it('a TerminalError is not retried', async () => {
    const q = new WorkQueue(new ItemExponentialLimiter(1, 10));
    const terminal = {
      kind: 'T',
      reconcile: (): Promise<never> => Promise.reject(new TerminalError('bad spec')),
    };
    await processOne(q, terminal, 'k', options);
    expect(q.retries('k')).toBe(0);
    const next = q.get();
    setTimeout(() => q.shutDown(), 50);
    expect(await next).toBeUndefined();
  });
});
