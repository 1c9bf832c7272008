import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createBalancer } from '../../../src/balancer/createBalancer.js';
import { EndpointState } from '../../../src/balancer/EndpointState.js';
import { MAX_SCHEDULE, WeightedRoundRobinStrategy } from '../../../src/balancer/strategies/WeightedRoundRobin.js';
import { endpoints, tally } from '../helpers.js';

/** nginx's smooth weighted round robin, transcribed plainly: O(n) per pick. */
function nginx(weights: readonly number[], picks: number): number[] {
  const current = weights.map(() => 0);
  const total = weights.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  for (let p = 0; p < picks; p++) {
    let best = -1;
    for (let i = 0; i < weights.length; i++) {
      current[i] = (current[i] as number) + (weights[i] as number);
      if (best === -1 || (current[i] as number) > (current[best] as number)) best = i;
    }
    current[best] = (current[best] as number) - total;
    out.push(best);
  }
  return out;
}

function states(weights: readonly number[]): EndpointState[] {
  return weights.map(
    (weight, i) => new EndpointState({ id: `e${i}`, address: `a${i}`, weight, zone: undefined, meta: {} }),
  );
}

function picks(strategy: WeightedRoundRobinStrategy, list: EndpointState[], n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(list.indexOf(strategy.pick(undefined, undefined) as EndpointState));
  return out;
}

describe('weighted-round-robin (smooth, as nginx)', () => {
  it('weights a=5, b=1, c=1 give a a b a c a a, over and over', () => {
    const lb = createBalancer({
      strategy: 'weighted-round-robin',
      endpoints: [
        { id: 'a', address: 'x:1', weight: 5 },
        { id: 'b', address: 'x:2', weight: 1 },
        { id: 'c', address: 'x:3', weight: 1 },
      ],
    });
    const seq: string[] = [];
    for (let i = 0; i < 21; i++) {
      const lease = lb.acquire();
      seq.push(lease?.endpoint.id ?? '-');
      lease?.release({ ok: true });
    }
    expect(seq.join(' ')).toBe('a a b a c a a a a b a c a a a a b a c a a');
  });

  it('gives exactly the sequence of nginx’s O(n) loop, for any integer weights', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 600 }),
        (weights, n) => {
          const s = new WeightedRoundRobinStrategy();
          const list = states(weights);
          s.setEndpoints(list);
          expect(picks(s, list, n)).toEqual(nginx(weights, n));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('matches nginx with large and unequal weights too', () => {
    const weights = Array.from({ length: 300 }, (_, i) => ((i * 7919) % 1000) + 1);
    const s = new WeightedRoundRobinStrategy();
    const list = states(weights);
    s.setEndpoints(list);
    expect(picks(s, list, 20_000)).toEqual(nginx(weights, 20_000));
  });

  it('replays the recorded period exactly, over many periods', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 8 }), (weights) => {
        const s = new WeightedRoundRobinStrategy();
        const list = states(weights);
        s.setEndpoints(list);
        const n = weights.reduce((a, b) => a + b, 0) * 5 + 3;
        expect(picks(s, list, n)).toEqual(nginx(weights, n));
      }),
    );
  });

  it('matches nginx when the period is too long to record, across rebases of time', () => {
    const weights = [MAX_SCHEDULE, 1, 2, 7];
    const s = new WeightedRoundRobinStrategy(7);
    const list = states(weights);
    s.setEndpoints(list);
    expect(picks(s, list, 5_000)).toEqual(nginx(weights, 5_000));
  });

  it('splits traffic in proportion to fractional weights', () => {
    const weights = [0.5, 1.5, 3];
    const s = new WeightedRoundRobinStrategy();
    const list = states(weights);
    s.setEndpoints(list);
    const counts = tally(picks(s, list, 5_000).map(String));
    expect(counts.get('0')).toBe(500);
    expect(counts.get('1')).toBe(1_500);
    expect(counts.get('2')).toBe(3_000);
  });

  it('restarts the schedule when the rotation changes', () => {
    const s = new WeightedRoundRobinStrategy();
    const list = states([5, 1, 1]);
    s.setEndpoints(list);
    picks(s, list, 3);
    s.setEndpoints(list.slice(0, 2));
    expect(picks(s, list, 6)).toEqual(nginx([5, 1], 6));
    s.setEndpoints([]);
    expect(s.pick(undefined, undefined)).toBeUndefined();
  });

  it('a skipped endpoint forfeits its turn; all skipped gives undefined', () => {
    const s = new WeightedRoundRobinStrategy();
    const list = states([5, 1, 1]);
    s.setEndpoints(list);
    const notA = (e: EndpointState) => e.id === 'e0';
    const got = [];
    for (let i = 0; i < 7; i++) got.push(s.pick(undefined, notA)?.id);
    expect(got.every((id) => id !== 'e0')).toBe(true);
    expect(tally(got as string[]).get('e1')).toBeGreaterThan(0);
    expect(tally(got as string[]).get('e2')).toBeGreaterThan(0);
    expect(s.pick(undefined, () => true)).toBeUndefined();
  });

  it('balances 1000 endpoints exactly over one period', () => {
    const lb = createBalancer({ strategy: 'weighted-round-robin', endpoints: endpoints(1000, [3, 2]) });
    const seen: string[] = [];
    for (let i = 0; i < 1003; i++) {
      const lease = lb.acquire();
      seen.push(lease?.endpoint.id as string);
      lease?.release({ ok: true });
    }
    const counts = tally(seen);
    expect(counts.get('e0')).toBe(3);
    expect(counts.get('e1')).toBe(2);
    expect(counts.get('e999')).toBe(1);
  });
});
