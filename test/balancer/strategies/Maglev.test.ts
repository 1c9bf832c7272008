import { describe, expect, it } from 'vitest';
import { createBalancer } from '../../../src/balancer/createBalancer.js';
import type { Lease } from '../../../src/balancer/Lease.js';
import { MaglevTable } from '../../../src/ring/MaglevTable.js';
import { endpoints, fakeClock, seeded, tally } from '../helpers.js';

const keys = Array.from({ length: 3_000 }, (_, i) => `flow:${i}`);

function owners(lb: ReturnType<typeof createBalancer>): string[] {
  return keys.map((key) => {
    const lease = lb.acquire({ key }) as Lease;
    lease.release({ ok: true });
    return lease.endpoint.id;
  });
}

describe('maglev', () => {
  it('maps a key as MaglevTable does, weights included', () => {
    const eps = endpoints(7, [1, 1, 2, 1, 3, 1, 1]);
    const lb = createBalancer({ strategy: 'maglev', endpoints: eps, maglev: { tableSize: 5_003 } });
    const table = new MaglevTable(
      eps.map((e) => ({ id: e.id, weight: e.weight as number })),
      { size: 5_003 },
    );
    expect(owners(lb)).toEqual(keys.map((k) => table.get(k)));
  });

  it('remaps little when an endpoint is ejected, and everything back on return', () => {
    const clock = fakeClock();
    const lb = createBalancer({
      strategy: 'maglev',
      endpoints: endpoints(10),
      now: clock.now,
      outlierDetection: { consecutiveFailures: 1, baseEjectionMs: 500 },
    });
    const before = owners(lb);
    (lb.acquire({ key: keys[before.indexOf('e4')] as string }) as Lease).release({ ok: false });
    const during = owners(lb);
    expect(during).not.toContain('e4');
    const moved = keys.filter((_, i) => before[i] !== 'e4' && during[i] !== before[i]).length;
    // Maglev moves a little more than the ejected endpoint's keys: far less than a rehash.
    expect(moved / keys.length).toBeLessThan(0.05);
    clock.advance(500);
    expect(owners(lb)).toEqual(before);
    lb.close();
  });

  it('a retry avoiding the owner goes to one other endpoint, the same for the same key', () => {
    const lb = createBalancer({ strategy: 'maglev', endpoints: endpoints(5) });
    for (const key of keys.slice(0, 50)) {
      const owner = lb.acquire({ key })?.endpoint.id as string;
      const a = lb.acquire({ key, avoid: [owner] })?.endpoint.id;
      const b = lb.acquire({ key, avoid: [owner] })?.endpoint.id;
      expect(a).not.toBe(owner);
      expect(a).toBe(b);
    }
  });

  it('picks at random without a key', () => {
    const lb = createBalancer({ strategy: 'maglev', endpoints: endpoints(3), random: seeded(12) });
    const ids: string[] = [];
    for (let i = 0; i < 3_000; i++) ids.push(lb.acquire()?.endpoint.id as string);
    for (const c of tally(ids).values()) expect(Math.abs(c / 1_000 - 1)).toBeLessThan(0.1);
  });

  it('refuses a key that is neither a string nor bytes', () => {
    const lb = createBalancer({ strategy: 'maglev', endpoints: endpoints(2) });
    expect(() => lb.acquire({ key: 7 as never })).toThrow(
      /ctx\.key must be a string, Buffer or Uint8Array, got number/,
    );
    expect(lb.status().inFlight).toBe(0);
    expect(lb.acquire({ key: new Uint8Array([1, 2]) })).toBeDefined();
  });

  it('rejects a table size that is not a prime, or smaller than the endpoint count', () => {
    expect(() => createBalancer({ strategy: 'maglev', maglev: { tableSize: 65536 } })).toThrow(
      /maglev\.tableSize must be a prime.*got 65536/,
    );
    expect(() => createBalancer({ strategy: 'maglev', maglev: { tableSize: 3 }, endpoints: endpoints(5) })).toThrow(
      /endpoints must have at most maglev\.tableSize \(3\) endpoints/,
    );
    const lb = createBalancer({ strategy: 'maglev', maglev: { tableSize: 3 }, endpoints: endpoints(3) });
    expect(() => lb.update(endpoints(4))).toThrow(/maglev\.tableSize/);
    expect(lb.endpoints.length).toBe(3);
  });
});
