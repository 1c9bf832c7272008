import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createBalancer } from '../../../src/balancer/createBalancer.js';
import { EndpointState } from '../../../src/balancer/EndpointState.js';
import { pickPair } from '../../../src/balancer/strategies/PowerOfTwoChoices.js';
import { endpoints, seeded, tally } from '../helpers.js';

function states(n: number): EndpointState[] {
  return Array.from(
    { length: n },
    (_, i) => new EndpointState({ id: `e${i}`, address: `a${i}`, weight: 1, zone: undefined, meta: {} }),
  );
}

/** A random() that returns the given values in turn. */
function scripted(values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length] as number;
}

describe('p2c', () => {
  it('draws two distinct endpoints, uniformly over pairs', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 50 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (n, r1, r2) => {
          const list = states(n);
          const pair = pickPair(list, scripted([r1, r2]), undefined);
          expect(pair?.b).toBeDefined();
          expect(pair?.a).not.toBe(pair?.b);
        },
      ),
    );
    const list = states(4);
    const random = seeded(8);
    const pairs: string[] = [];
    for (let i = 0; i < 60_000; i++) {
      const p = pickPair(list, random, undefined);
      pairs.push([p?.a.id, p?.b?.id].sort().join('+'));
    }
    const counts = tally(pairs);
    expect(counts.size).toBe(6);
    for (const c of counts.values()) expect(Math.abs(c / 10_000 - 1)).toBeLessThan(0.05);
  });

  it('the one with fewer in flight wins', () => {
    // random() = 0, 0: i = 0, j = 0 -> 1 (distinct): the pair is (e0, e1).
    const lb = createBalancer({ strategy: 'p2c', endpoints: endpoints(3), random: scripted([0, 0]) });
    const first = lb.acquire();
    expect(first?.endpoint.id).toBe('e0'); // a tie goes to the first draw
    expect(lb.acquire()?.endpoint.id).toBe('e1'); // e0 now has 1 in flight
    expect(lb.acquire()?.endpoint.id).toBe('e0'); // 1 vs 1: the first draw
    first?.release({ ok: true });
    expect(lb.acquire()?.endpoint.id).toBe('e0'); // 1 vs 1 again
  });

  it('keeps the load far more even than random when requests pile up', () => {
    const spread = (strategy: 'p2c' | 'random') => {
      const lb = createBalancer({ strategy, endpoints: endpoints(50), random: seeded(4) });
      const ids: string[] = [];
      for (let i = 0; i < 5_000; i++) ids.push(lb.acquire()?.endpoint.id as string); // never released
      const counts = [...tally(ids).values()];
      return Math.max(...counts) - Math.min(...counts);
    };
    const p2c = spread('p2c');
    expect(p2c).toBeLessThanOrEqual(4); // O(log log n) above the mean
    expect(spread('random')).toBeGreaterThan(3 * p2c);
  });

  it('counts weight: (inFlight + 1) / weight', () => {
    const lb = createBalancer({ strategy: 'p2c', endpoints: endpoints(2, [3, 1]), random: seeded(2) });
    const ids: string[] = [];
    for (let i = 0; i < 400; i++) ids.push(lb.acquire()?.endpoint.id as string);
    expect(tally(ids).get('e0')).toBe(300);
  });

  it('takes the other one when one of the pair is avoided; a single endpoint works', () => {
    const lb = createBalancer({ strategy: 'p2c', endpoints: endpoints(2), random: seeded(6) });
    for (let i = 0; i < 20; i++) expect(lb.acquire({ avoid: ['e1'] })?.endpoint.id).toBe('e0');
    const one = createBalancer({ strategy: 'p2c', endpoints: endpoints(1) });
    expect(one.acquire()?.endpoint.id).toBe('e0');
    expect(pickPair([], Math.random, undefined)).toBeUndefined();
    expect(pickPair(states(1), Math.random, () => true)).toBeUndefined();
    expect(pickPair(states(5), Math.random, () => true)).toBeUndefined();
  });
});
