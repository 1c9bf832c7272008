/**
 * The memory store's token buckets under an injected clock: exact waits, a reference bound
 * checked with fast-check, and the sweep.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/store/memory/MemoryStore.js';
import { TOKEN_EPSILON } from '../../src/store/RateLimitStorage.js';

describe('memory store rate limits (injected clock)', () => {
  it('refills by the store clock and says exactly how long to wait', async () => {
    let now = 1_000_000;
    const store = new MemoryStore({ clock: () => now });
    const limit = { capacity: 2, refillPerSec: 10 };
    expect((await store.rateLimits.take('k', limit)).allowed).toBe(true);
    expect((await store.rateLimits.take('k', limit)).allowed).toBe(true);
    expect(await store.rateLimits.take('k', limit)).toEqual({ allowed: false, remaining: 0, retryAfterMs: 100 });
    now += 40;
    expect(await store.rateLimits.take('k', { ...limit, cost: 2 })).toEqual({
      allowed: false,
      remaining: 0,
      retryAfterMs: 160,
    });
    now += 60;
    expect(await store.rateLimits.take('k', limit)).toEqual({ allowed: true, remaining: 0, retryAfterMs: 0 });
    // A clock that steps back refills nothing.
    now -= 10_000;
    expect((await store.rateLimits.take('k', limit)).allowed).toBe(false);
    await store.close();
  });

  it('never allows more than capacity + refillPerSec x elapsed (reference bound)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.double({ min: 0.01, max: 1000, noNaN: true }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 500 }), cost: fc.integer({ min: 1, max: 5 }) }), {
          minLength: 1,
          maxLength: 200,
        }),
        async (rate, capacity, steps) => {
          let now = 0;
          const store = new MemoryStore({ clock: () => now });
          let taken = 0;
          for (const { gap, cost } of steps) {
            now += gap;
            const o = await store.rateLimits.take('k', {
              capacity,
              refillPerSec: rate,
              cost: Math.min(cost, capacity),
            });
            expect(o.remaining).toBeGreaterThanOrEqual(0);
            expect(o.remaining).toBeLessThanOrEqual(capacity);
            if (o.allowed) {
              expect(o.retryAfterMs).toBe(0);
              taken += Math.min(cost, capacity);
            } else {
              expect(o.retryAfterMs).toBeGreaterThanOrEqual(1);
            }
          }
          await store.close();
          // Within TOKEN_EPSILON: the last take may have gone through that much short.
          expect(taken).toBeLessThanOrEqual(capacity + (rate * now) / 1000 + TOKEN_EPSILON + 1e-9);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('refills split across refused takes add up: rounding never delays the take past its wait', async () => {
    // 2 tokens/s, 17 of 18 taken: 1 left, 8000 ms to 17. A refused take at 7999 ms refills
    // 15.998 and the one at 8000 ms the last 0.002; in binary floating point those sum to a hair
    // under 17 (CI found it: fast-check counterexample [2, 18, 17]).
    let now = 0;
    const store = new MemoryStore({ clock: () => now });
    const limit = { capacity: 18, refillPerSec: 2, cost: 17 };
    expect((await store.rateLimits.take('k', limit)).allowed).toBe(true);
    expect(await store.rateLimits.take('k', limit)).toEqual({ allowed: false, remaining: 1, retryAfterMs: 8000 });
    now += 7999;
    expect((await store.rateLimits.take('k', limit)).allowed).toBe(false);
    now += 1;
    expect(await store.rateLimits.take('k', limit)).toEqual({ allowed: true, remaining: 0, retryAfterMs: 0 });
    await store.close();
  });

  it('a take let through a millionth short owes it: shortfalls never add up to a free token', async () => {
    // 0.9999993 tokens/s: each refill of 1000 ms comes 7e-7 short of the 1 token taken. Within
    // TOKEN_EPSILON the take goes through, and the shortfall is carried as debt, so the next
    // take one second later is refused (found by reading; the property below needs this
    // twice in one run to see it).
    let now = 0;
    const store = new MemoryStore({ clock: () => now });
    const limit = { capacity: 1, refillPerSec: 0.9999993 };
    expect((await store.rateLimits.take('k', limit)).allowed).toBe(true);
    now += 1000;
    expect(await store.rateLimits.take('k', limit)).toEqual({ allowed: true, remaining: 0, retryAfterMs: 0 });
    now += 1000;
    expect(await store.rateLimits.take('k', limit)).toEqual({ allowed: false, remaining: 0, retryAfterMs: 1 });
    now += 1;
    expect((await store.rateLimits.take('k', limit)).allowed).toBe(true);
    await store.close();
  });

  it('a refused take is right about its wait: the same take succeeds then, not 1 ms before', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 20 }),
        async (rate, capacity, costRaw) => {
          const cost = Math.min(costRaw, capacity);
          let now = 0;
          const store = new MemoryStore({ clock: () => now });
          const limit = { capacity, refillPerSec: rate, cost };
          let o = await store.rateLimits.take('k', limit);
          while (o.allowed) o = await store.rateLimits.take('k', limit);
          const wait = o.retryAfterMs;
          if (wait > 1) {
            now += wait - 1;
            expect((await store.rateLimits.take('k', limit)).allowed).toBe(false);
            now += 1;
          } else {
            now += wait;
          }
          expect((await store.rateLimits.take('k', limit)).allowed).toBe(true);
          await store.close();
        },
      ),
      { numRuns: 100 },
    );
  });

  it('sweeps buckets that are full again', async () => {
    let now = 0;
    const store = new MemoryStore({ clock: () => now });
    for (let i = 0; i < 5; i++) await store.rateLimits.take(`k${i}`, { capacity: 2, refillPerSec: 1 });
    await store.rateLimits.take('slow', { capacity: 2, refillPerSec: 0.001 });
    expect(store.rateLimits.size).toBe(6);
    now += 1_000;
    store.rateLimits.sweep();
    expect(store.rateLimits.size).toBe(1);
    await store.close();
  });
});
