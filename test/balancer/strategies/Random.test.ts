import { describe, expect, it } from 'vitest';
import { createBalancer } from '../../../src/balancer/createBalancer.js';
import { endpoints, seeded, tally } from '../helpers.js';

function draw(lb: ReturnType<typeof createBalancer>, n: number): Map<string, number> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const lease = lb.acquire();
    ids.push(lease?.endpoint.id ?? '-');
    lease?.release({ ok: true });
  }
  return tally(ids);
}

describe('random', () => {
  it('spreads uniformly, weights ignored (within 5% at 10k draws per endpoint)', () => {
    const lb = createBalancer({ strategy: 'random', endpoints: endpoints(5, [9, 1, 1, 1, 1]), random: seeded(1) });
    const counts = draw(lb, 50_000);
    for (let i = 0; i < 5; i++) expect(Math.abs((counts.get(`e${i}`) ?? 0) / 10_000 - 1)).toBeLessThan(0.05);
  });

  it('replays exactly with the same seed', () => {
    const a = createBalancer({ strategy: 'random', endpoints: endpoints(7), random: seeded(42) });
    const b = createBalancer({ strategy: 'random', endpoints: endpoints(7), random: seeded(42) });
    expect([...draw(a, 100)]).toEqual([...draw(b, 100)]);
  });

  it('never returns an avoided endpoint while another exists', () => {
    const lb = createBalancer({ strategy: 'random', endpoints: endpoints(3), random: seeded(3) });
    for (let i = 0; i < 200; i++) {
      const lease = lb.acquire({ avoid: ['e0', 'e1'] });
      expect(lease?.endpoint.id).toBe('e2');
      lease?.release();
    }
  });
});

describe('weighted-random', () => {
  it('draws in proportion to weight (within 5%)', () => {
    const weights = [1, 2, 3, 4, 10];
    const lb = createBalancer({ strategy: 'weighted-random', endpoints: endpoints(5, weights), random: seeded(9) });
    const n = 200_000;
    const counts = draw(lb, n);
    weights.forEach((w, i) => {
      const expected = (n * w) / 20;
      expect(Math.abs((counts.get(`e${i}`) ?? 0) / expected - 1)).toBeLessThan(0.05);
    });
  });

  it('stays proportional when some endpoints are avoided (the weighted scan)', () => {
    const lb = createBalancer({
      strategy: 'weighted-random',
      endpoints: endpoints(4, [100, 1, 2, 3]),
      random: seeded(5),
    });
    const ids: string[] = [];
    for (let i = 0; i < 30_000; i++) {
      const lease = lb.acquire({ avoid: ['e0'] });
      ids.push(lease?.endpoint.id as string);
      lease?.release();
    }
    const counts = tally(ids);
    expect(counts.get('e0')).toBeUndefined();
    expect(Math.abs((counts.get('e1') ?? 0) / 5_000 - 1)).toBeLessThan(0.08);
    expect(Math.abs((counts.get('e3') ?? 0) / 15_000 - 1)).toBeLessThan(0.05);
  });

  it('handles extreme weight ratios', () => {
    const lb = createBalancer({
      strategy: 'weighted-random',
      endpoints: endpoints(3, [1_000_000, 0.001, 1]),
      random: seeded(11),
    });
    const counts = draw(lb, 10_000);
    expect((counts.get('e0') ?? 0) > 9_980).toBe(true);
  });
});
