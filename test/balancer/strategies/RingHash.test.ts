import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createBalancer } from '../../../src/balancer/createBalancer.js';
import type { Lease } from '../../../src/balancer/Lease.js';
import { HashRing } from '../../../src/ring/HashRing.js';
import { endpoints, fakeClock, seeded, tally } from '../helpers.js';

const keys = Array.from({ length: 2_000 }, (_, i) => `user:${i}`);

function owners(lb: ReturnType<typeof createBalancer>): string[] {
  return keys.map((key) => {
    const lease = lb.acquire({ key }) as Lease;
    lease.release({ ok: true });
    return lease.endpoint.id;
  });
}

describe('ring-hash', () => {
  it('maps a key as HashRing does, weights included', () => {
    const eps = endpoints(5, [1, 2, 1, 3, 1]);
    const lb = createBalancer({ strategy: 'ring-hash', endpoints: eps });
    const ring = new HashRing({ nodes: eps.map((e) => ({ id: e.id, weight: e.weight as number })) });
    expect(owners(lb)).toEqual(keys.map((k) => ring.get(k)));
    expect(lb.acquire({ key: Buffer.from('user:7') })?.endpoint.id).toBe(ring.get('user:7'));
  });

  it('moves only the keys of an endpoint that leaves, and they come back when it returns', () => {
    const lb = createBalancer({ strategy: 'ring-hash', endpoints: endpoints(6) });
    const before = owners(lb);
    lb.update(endpoints(6).filter((e) => e.id !== 'e3'));
    const during = owners(lb);
    keys.forEach((_, i) => {
      if (before[i] !== 'e3') expect(during[i]).toBe(before[i]);
      else expect(during[i]).not.toBe('e3');
    });
    lb.update(endpoints(6));
    expect(owners(lb)).toEqual(before);
  });

  it('moves only the keys of an ejected endpoint, until it is restored', () => {
    const clock = fakeClock();
    const lb = createBalancer({
      strategy: 'ring-hash',
      endpoints: endpoints(4),
      now: clock.now,
      outlierDetection: { consecutiveFailures: 1, baseEjectionMs: 1_000 },
    });
    const before = owners(lb);
    const key = keys[before.indexOf('e2')] as string;
    (lb.acquire({ key }) as Lease).release({ ok: false });
    const during = owners(lb);
    keys.forEach((_, i) => {
      if (before[i] !== 'e2') expect(during[i]).toBe(before[i]);
    });
    expect(during).not.toContain('e2');
    clock.advance(1_000);
    expect(owners(lb)).toEqual(before);
    lb.close();
  });

  it('retries go to the next endpoint clockwise', () => {
    const eps = endpoints(5);
    const lb = createBalancer({ strategy: 'ring-hash', endpoints: eps });
    const ring = new HashRing({ nodes: eps.map((e) => e.id) });
    for (const key of keys.slice(0, 100)) {
      const [first, second] = ring.getN(key, 2);
      expect(lb.acquire({ key, avoid: [first as string] })?.endpoint.id).toBe(second);
    }
  });

  it("with hash 'ketama', an endpoint with no ring points still takes what the owner cannot", () => {
    // b's share (1/1001) is under 1/(40 x 2): ketama gives it no point on the ring, so the
    // ring's walk never meets it.
    const clock = fakeClock();
    const lb = createBalancer({
      strategy: 'ring-hash',
      ringHash: { hash: 'ketama' },
      endpoints: [
        { id: 'a', address: 'x:1', weight: 1_000 },
        { id: 'b', address: 'x:2', weight: 1 },
      ],
      circuitBreaker: { failureThreshold: 1, cooldownMs: 10 },
      now: clock.now,
    });
    expect(
      new HashRing({
        hash: 'ketama',
        nodes: [
          { id: 'a', weight: 1_000 },
          { id: 'b', weight: 1 },
        ],
      }).getN('k', 2),
    ).toEqual(['a']);
    // A retry avoiding the owner goes to b, which is available.
    expect(lb.acquire({ key: 'k', avoid: ['a'] })?.endpoint.id).toBe('b');
    // a fails once: its breaker opens, then half-opens and its one trial place is taken.
    (lb.acquire({ key: 'k' }) as Lease).release({ ok: false });
    clock.advance(10);
    expect(lb.acquire({ key: 'k' })?.endpoint.id).toBe('a');
    expect(lb.available).toBe(2);
    expect(lb.acquire({ key: 'k' })?.endpoint.id).toBe('b');
    lb.close();
  });

  it('picks at random without a key', () => {
    const lb = createBalancer({ strategy: 'ring-hash', endpoints: endpoints(4), random: seeded(2) });
    const ids: string[] = [];
    for (let i = 0; i < 4_000; i++) {
      const lease = lb.acquire() as Lease;
      ids.push(lease.endpoint.id);
      lease.release();
    }
    for (const c of tally(ids).values()) expect(Math.abs(c / 1_000 - 1)).toBeLessThan(0.1);
  });

  it('with boundedLoad, picks exactly what HashRing.getBounded picks for the in-flight loads', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.double({ min: 1.01, max: 3, noNaN: true }),
        fc.array(fc.tuple(fc.nat(keys.length - 1), fc.boolean()), { maxLength: 150 }),
        (n, c, ops) => {
          const eps = endpoints(n);
          const lb = createBalancer({ strategy: 'ring-hash', endpoints: eps, ringHash: { boundedLoad: c } });
          const ring = new HashRing({ nodes: eps.map((e) => e.id) });
          const loads = new Map<string, number>();
          const held: Lease[] = [];
          for (const [k, hold] of ops) {
            const key = keys[k] as string;
            const expected = ring.getBounded(key, loads, c);
            const lease = lb.acquire({ key }) as Lease;
            expect(lease.endpoint.id).toBe(expected);
            if (hold) {
              held.push(lease);
              loads.set(lease.endpoint.id, (loads.get(lease.endpoint.id) ?? 0) + 1);
            } else {
              lease.release({ ok: true });
            }
            if (held.length > 0 && k % 3 === 0) {
              const old = held.shift() as Lease;
              old.release({ ok: true });
              loads.set(old.endpoint.id, (loads.get(old.endpoint.id) as number) - 1);
            }
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('with boundedLoad, agrees with getBounded when a hot key crowds the whole neighbourhood', () => {
    // 20 endpoints, c = 1.01: the key's nearest endpoints fill up and the pick must walk past
    // the first few probes, to the ring's own full walk.
    const eps = endpoints(20);
    const lb = createBalancer({ strategy: 'ring-hash', endpoints: eps, ringHash: { boundedLoad: 1.01 } });
    const ring = new HashRing({ nodes: eps.map((e) => e.id) });
    const loads = new Map<string, number>();
    for (let i = 0; i < 2_000; i++) {
      const key = i % 3 === 0 ? `k${i}` : 'hot';
      const expected = ring.getBounded(key, loads, 1.01);
      const lease = lb.acquire({ key }) as Lease;
      expect(lease.endpoint.id).toBe(expected);
      loads.set(lease.endpoint.id, (loads.get(lease.endpoint.id) ?? 0) + 1);
    }
  });

  it('with boundedLoad, no endpoint holds more than ceil(c x average) in flight', () => {
    const c = 1.25;
    const lb = createBalancer({ strategy: 'ring-hash', endpoints: endpoints(8), ringHash: { boundedLoad: c } });
    // One hot key: without the bound, every request would go to one endpoint.
    for (let i = 1; i <= 400; i++) {
      lb.acquire({ key: 'hot' });
      const loads = lb.status().endpoints.map((e) => e.inFlight);
      expect(Math.max(...loads)).toBeLessThanOrEqual(Math.ceil((c * i) / 8));
    }
  });

  it('rejects bad ring options and weights too large for the ring, naming the field', () => {
    expect(() => createBalancer({ strategy: 'ring-hash', ringHash: { boundedLoad: 1 } })).toThrow(
      /ringHash\.boundedLoad must be a number in \(1, 1000000\], got 1/,
    );
    expect(() => createBalancer({ strategy: 'ring-hash', ringHash: { vnodes: 0 } })).toThrow(/ringHash\.vnodes/);
    expect(() => createBalancer({ strategy: 'ring-hash', ringHash: { hash: 'md4' as never } })).toThrow(
      /ringHash\.hash/,
    );
    expect(() => createBalancer({ strategy: 'ring-hash', endpoints: endpoints(2, [1, 10_000]) })).toThrow(
      /endpoints\[1\]\.weight gives more than 1000000 ring points/,
    );
    expect(() =>
      createBalancer({ strategy: 'ring-hash', endpoints: endpoints(1) }).acquire({ key: 42 as never }),
    ).toThrow(TypeError);
  });
});
