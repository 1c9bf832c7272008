/**
 * The rate-limit part of the store contract (`store.rateLimits`), run by contract.ts on every
 * backend. The store's clock is real here, so the buckets refill very slowly (or the tests
 * wait for an outcome); nothing asserts how long a step took.
 */
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import type { RateLimitRequest } from '../../src/store/RateLimitStorage.js';
import type { Store } from '../../src/store/Store.js';

let counter = 0;
/** A bucket key no other test uses. */
const fresh = (what: string) => `rl:${what}:${++counter}:${Math.random().toString(36).slice(2, 8)}`;

/** Refills one token in about 17 minutes: nothing refills noticeably during a test. */
const SLOW = 0.001;

/** Adds the rate-limit cases; `store()` is the suite's store. */
export function rateLimitCases(store: () => Store): void {
  describe('rate limits', () => {
    it('a new bucket starts full; takes count down, then are refused with the wait for a token', async () => {
      const key = fresh('burst');
      const limit = { capacity: 3, refillPerSec: SLOW };
      const got = [];
      for (let i = 0; i < 3; i++) got.push(await store().rateLimits.take(key, limit));
      expect(got).toEqual([
        { allowed: true, remaining: 2, retryAfterMs: 0 },
        { allowed: true, remaining: 1, retryAfterMs: 0 },
        { allowed: true, remaining: 0, retryAfterMs: 0 },
      ]);
      const refused = await store().rateLimits.take(key, limit);
      expect(refused.allowed).toBe(false);
      expect(refused.remaining).toBe(0);
      // One token at 0.001/s is 1_000_000 ms away, less what refilled since the takes.
      expect(refused.retryAfterMs).toBeGreaterThan(900_000);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(1_000_000);
      expect(Number.isInteger(refused.retryAfterMs)).toBe(true);
    });

    it('cost: takes that many tokens; a refused take takes nothing', async () => {
      const key = fresh('cost');
      const limit = (cost: number): RateLimitRequest => ({ capacity: 5, refillPerSec: SLOW, cost });
      expect(await store().rateLimits.take(key, limit(3))).toEqual({ allowed: true, remaining: 2, retryAfterMs: 0 });
      const refused = await store().rateLimits.take(key, limit(3));
      expect(refused).toMatchObject({ allowed: false, remaining: 2 });
      expect(refused.retryAfterMs).toBeGreaterThan(900_000); // ~1 token short
      expect(await store().rateLimits.take(key, limit(2))).toEqual({ allowed: true, remaining: 0, retryAfterMs: 0 });
      expect(await store().rateLimits.take(key, limit(0.5))).toMatchObject({ allowed: false });
    });

    it('buckets are per key, whatever the key holds (braces, #, unicode)', async () => {
      const base = fresh('keys');
      const keys = [`${base}`, `${base}{x}`, `#${base}`, `${base}}{`, `${base}:ünï`];
      const limit = { capacity: 1, refillPerSec: SLOW };
      for (const key of keys) {
        expect((await store().rateLimits.take(key, limit)).allowed, key).toBe(true);
      }
      for (const key of keys) {
        expect((await store().rateLimits.take(key, limit)).allowed, key).toBe(false);
      }
    });

    it('refills by the store clock: a refused bucket lets a take through again later', async () => {
      const key = fresh('refill');
      const limit = { capacity: 1, refillPerSec: 200 };
      expect((await store().rateLimits.take(key, limit)).allowed).toBe(true);
      let outcome = await store().rateLimits.take(key, limit);
      const deadline = Date.now() + 5_000;
      while (!outcome.allowed && Date.now() < deadline) {
        expect(outcome.retryAfterMs).toBeGreaterThanOrEqual(1);
        expect(outcome.retryAfterMs).toBeLessThanOrEqual(5); // 1 token at 200/s
        await new Promise((resolve) => setTimeout(resolve, outcome.retryAfterMs));
        outcome = await store().rateLimits.take(key, limit);
      }
      expect(outcome.allowed).toBe(true);
    });

    it("the call's capacity caps the bucket", async () => {
      const key = fresh('cap');
      expect((await store().rateLimits.take(key, { capacity: 10, refillPerSec: SLOW })).remaining).toBe(9);
      expect((await store().rateLimits.take(key, { capacity: 2, refillPerSec: SLOW })).remaining).toBe(1);
      expect((await store().rateLimits.take(key, { capacity: 10, refillPerSec: SLOW })).remaining).toBe(0);
    });

    it('is atomic: concurrent takes never hand out more than the bucket holds', async () => {
      const key = fresh('race');
      const limit = { capacity: 7, refillPerSec: SLOW };
      const outcomes = await Promise.all(Array.from({ length: 30 }, () => store().rateLimits.take(key, limit)));
      expect(outcomes.filter((o) => o.allowed)).toHaveLength(7);
      expect(outcomes.filter((o) => !o.allowed).every((o) => o.remaining === 0 && o.retryAfterMs > 0)).toBe(true);
    });

    it('rejects bad keys and limits with InvalidOptionError naming the field', async () => {
      const ok = { capacity: 2, refillPerSec: 1 };
      const bad: [unknown, unknown, string][] = [
        ['', ok, 'key'],
        [42, ok, 'key'],
        ['x'.repeat(1025), ok, 'key'],
        ['k', null, 'request'],
        ['k', undefined, 'request'],
        ['k', { ...ok, capacity: 0 }, 'capacity'],
        ['k', { ...ok, capacity: Number.NaN }, 'capacity'],
        ['k', { ...ok, capacity: 2e9 }, 'capacity'],
        ['k', { ...ok, refillPerSec: -1 }, 'refillPerSec'],
        ['k', { ...ok, refillPerSec: Number.POSITIVE_INFINITY }, 'refillPerSec'],
        ['k', { ...ok, refillPerSec: '1' }, 'refillPerSec'],
        ['k', { ...ok, cost: 0 }, 'cost'],
        ['k', { ...ok, cost: 3 }, 'cost'],
      ];
      for (const [key, request, field] of bad) {
        const err = await store()
          .rateLimits.take(key as string, request as RateLimitRequest)
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(err, `${String(key).slice(0, 20)} ${JSON.stringify(request)}`).toBeInstanceOf(InvalidOptionError);
        expect((err as InvalidOptionError).field).toBe(field);
      }
    });

    it('extreme but valid limits give finite integer answers', async () => {
      const key = fresh('extreme');
      const slow = { capacity: 1e9, refillPerSec: Number.MIN_VALUE, cost: 1e9 };
      expect(await store().rateLimits.take(key, slow)).toEqual({ allowed: true, remaining: 0, retryAfterMs: 0 });
      const refused = await store().rateLimits.take(key, slow);
      expect(refused.allowed).toBe(false);
      expect(refused.retryAfterMs).toBe(1e15);
      const fast = await store().rateLimits.take(fresh('fast'), { capacity: 0.5, refillPerSec: 1e9, cost: 0.25 });
      expect(fast).toEqual({ allowed: true, remaining: 0, retryAfterMs: 0 });
    });
  });
}
