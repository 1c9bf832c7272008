import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createBalancer } from '../../../src/balancer/createBalancer.js';
import type { Lease } from '../../../src/balancer/Lease.js';
import { endpoints, tally } from '../helpers.js';

describe('least-connections', () => {
  it('always picks an endpoint with the fewest in flight per unit of weight', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.tuple(fc.boolean(), fc.nat()), { maxLength: 300 }),
        (weights, ops) => {
          const lb = createBalancer({ strategy: 'least-connections', endpoints: endpoints(weights.length, weights) });
          const held: Lease[] = [];
          const inFlight = new Map<string, number>();
          for (const [acquire, n] of ops) {
            if (acquire || held.length === 0) {
              const min = Math.min(...weights.map((w, i) => (inFlight.get(`e${i}`) ?? 0) / w));
              const lease = lb.acquire() as Lease;
              const id = lease.endpoint.id;
              expect((inFlight.get(id) ?? 0) / lease.endpoint.weight).toBe(min);
              inFlight.set(id, (inFlight.get(id) ?? 0) + 1);
              held.push(lease);
            } else {
              const [lease] = held.splice(n % held.length, 1) as [Lease];
              lease.release({ ok: true });
              inFlight.set(lease.endpoint.id, (inFlight.get(lease.endpoint.id) ?? 0) - 1);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('prefers the less loaded endpoint', () => {
    const lb = createBalancer({ strategy: 'least-connections', endpoints: endpoints(3) });
    const busy = [lb.acquire(), lb.acquire(), lb.acquire(), lb.acquire()];
    // e0 has 2 in flight, e1 1 and e2 1 (in some order): the next goes to one with 1.
    const counts = tally(busy.map((l) => l?.endpoint.id as string));
    const next = lb.acquire();
    expect(counts.get(next?.endpoint.id as string)).toBe(1);
  });

  it('takes turns among idle endpoints, in proportion to weight', () => {
    const lb = createBalancer({ strategy: 'least-connections', endpoints: endpoints(3, [1, 1, 1]) });
    const seq: string[] = [];
    for (let i = 0; i < 6; i++) {
      const lease = lb.acquire();
      seq.push(lease?.endpoint.id as string);
      lease?.release({ ok: true });
    }
    expect(seq).toEqual(['e0', 'e1', 'e2', 'e0', 'e1', 'e2']);

    const weighted = createBalancer({ strategy: 'least-connections', endpoints: endpoints(2, [3, 1]) });
    const ids: string[] = [];
    for (let i = 0; i < 400; i++) {
      const lease = weighted.acquire();
      ids.push(lease?.endpoint.id as string);
      lease?.release({ ok: true });
    }
    expect(tally(ids).get('e0')).toBe(300);
  });

  it('an endpoint whose weight goes up gets its new share at once', () => {
    const lb = createBalancer({
      strategy: 'least-connections',
      endpoints: [
        { id: 'a', address: 'x:1', weight: 0.001 },
        { id: 'b', address: 'x:2', weight: 1 },
      ],
    });
    lb.acquire()?.release({ ok: true }); // a: its next turn is 1 / 0.001 = 1000 picks away
    lb.update([
      { id: 'a', address: 'x:1', weight: 1 },
      { id: 'b', address: 'x:2', weight: 1 },
    ]);
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) {
      const lease = lb.acquire();
      ids.push(lease?.endpoint.id as string);
      lease?.release({ ok: true });
    }
    expect(tally(ids).get('a')).toBe(50);
  });

  it('keeps in-flight counts across update and picks by them', () => {
    const lb = createBalancer({ strategy: 'least-connections', endpoints: endpoints(2) });
    const held = [lb.acquire(), lb.acquire(), lb.acquire()];
    const heavy = tally(held.map((l) => l?.endpoint.id as string));
    const loaded = [...heavy].find(([, n]) => n === 2)?.[0] as string;
    lb.update([...endpoints(3)].reverse());
    // The newcomer e2 (0 in flight) first, then the endpoint with 1.
    const a = lb.acquire();
    const b = lb.acquire();
    expect(a?.endpoint.id).toBe('e2');
    expect(b?.endpoint.id).not.toBe(loaded);
  });

  it('skips to the least loaded acceptable endpoint when asked to avoid', () => {
    const lb = createBalancer({ strategy: 'least-connections', endpoints: endpoints(3) });
    lb.acquire(); // e0
    lb.acquire(); // e1
    const lease = lb.acquire({ avoid: ['e2'] });
    expect(['e0', 'e1']).toContain(lease?.endpoint.id);
  });
});
