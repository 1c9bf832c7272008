import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryRateLimiter } from '../../../server/ratelimit/MemoryRateLimiter.js';

describe('MemoryRateLimiter (token bucket)', () => {
  it('allows a burst, then one request per 1/rps, and says how long to wait', () => {
    let now = 0;
    const rl = new MemoryRateLimiter({ now: () => now });
    const limit = { rps: 10, burst: 3, header: undefined };
    expect([rl.take('k', limit), rl.take('k', limit), rl.take('k', limit)]).toEqual([0, 0, 0]);
    expect(rl.take('k', limit)).toBe(100);
    now = 50;
    expect(rl.take('k', limit)).toBe(50);
    now = 100;
    expect(rl.take('k', limit)).toBe(0);
    expect(rl.take('other', limit)).toBe(0); // buckets are per key
    rl.close();
  });

  it('never lets more than burst + rps x elapsed through (reference model)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.5, max: 1000, noNaN: true }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 300 }),
        (rps, burst, gaps) => {
          let now = 0;
          const rl = new MemoryRateLimiter({ now: () => now });
          let allowed = 0;
          for (const gap of gaps) {
            now += gap;
            if (rl.take('k', { rps, burst, header: undefined }) === 0) allowed++;
          }
          rl.close();
          expect(allowed).toBeLessThanOrEqual(burst + Math.floor((rps * now) / 1000) + 1);
        },
      ),
    );
  });

  it('sweeps full buckets and bounds their number', () => {
    let now = 0;
    const rl = new MemoryRateLimiter({ now: () => now, maxBuckets: 10 });
    const limit = { rps: 1, burst: 1, header: undefined };
    for (let i = 0; i < 25; i++) rl.take(`k${i}`, limit);
    expect(rl.size).toBe(10);
    now = 2000;
    rl.sweep();
    expect(rl.size).toBe(0);
    rl.close();
  });
});
