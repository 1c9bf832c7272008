import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BOUNDED_LOAD_FACTOR, HashRing, type RingHash } from '../../src/ring/HashRing.js';

/** The rule, written plainly: walk getN's clockwise order, first node under the bound. */
function referenceBounded(ring: HashRing, key: string, loads: Map<string, number>, c: number): string | undefined {
  if (ring.size === 0) return undefined;
  let total = 0;
  for (const id of ring.nodes) total += loads.get(id) ?? 0;
  const bound = Math.ceil((c * (total + 1)) / ring.size);
  return ring.getN(key, ring.size).find((id) => (loads.get(id) ?? 0) + 1 <= bound) ?? ring.get(key);
}

describe('HashRing.getBounded', () => {
  it('never lets a node exceed the bound while keys are assigned and released in random order (property)', () => {
    const op = fc.oneof(
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('assign' as const), key: fc.string({ maxLength: 12 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.constantFrom<RingHash>('xxh64', 'xxh32', 'ketama'),
        fc.constantFrom(1.0001, 1.1, 1.25, 1.5, 2, 3),
        fc.boolean(),
        fc.array(op, { minLength: 1, maxLength: 300 }),
        (n, hash, c, plainObject, ops) => {
          const ring = new HashRing({
            hash,
            vnodes: 40,
            nodes: Array.from({ length: n }, (_, i) => ({ id: `n${i}`, weight: 1 + (i % 3) })),
          });
          const loads = new Map<string, number>();
          const held: { key: string; node: string }[] = [];
          let peak = 0;
          let total = 0;
          for (const o of ops) {
            if (o.kind === 'assign') {
              const bound = Math.ceil((c * (total + 1)) / n);
              const arg = plainObject ? Object.fromEntries(loads) : loads;
              const node = ring.getBounded(o.key, arg, c) as string;
              expect(node).toBe(referenceBounded(ring, o.key, loads, c));
              expect((loads.get(node) ?? 0) + 1).toBeLessThanOrEqual(bound);
              loads.set(node, (loads.get(node) ?? 0) + 1);
              held.push({ key: o.key, node });
              total++;
            } else if (held.length > 0) {
              const [gone] = held.splice(o.pick % held.length, 1);
              loads.set(gone!.node, (loads.get(gone!.node) as number) - 1);
              total--;
            }
            // The bound grows with the total; releases only lower loads. So no node holds
            // more than the bound at the highest total so far, and with no release yet, no
            // more than the bound at the current total.
            peak = Math.max(peak, total);
            for (const load of loads.values()) expect(load).toBeLessThanOrEqual(Math.ceil((c * peak) / n));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps every node within ceil(c x average) as keys arrive', () => {
    const ring = new HashRing({ nodes: Array.from({ length: 10 }, (_, i) => `cache-${i}`) });
    const loads = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const node = ring.getBounded(`hot:${i % 300}:${i}`, loads) as string;
      loads.set(node, (loads.get(node) ?? 0) + 1);
      const bound = Math.ceil((1.25 * (i + 1)) / 10);
      let max = 0;
      for (const load of loads.values()) max = Math.max(max, load);
      if (max > bound) expect.fail(`a node holds ${max} > ${bound} after ${i + 1} keys`);
    }
    expect(Math.max(...loads.values())).toBeLessThanOrEqual(1250);
  });

  it('is get(key) while the first node has room, and walks clockwise past full ones', () => {
    const ring = new HashRing({ nodes: ['a', 'b', 'c', 'd'] });
    const key = 'user:42';
    const order = ring.getN(key, 4);
    expect(ring.getBounded(key, new Map())).toBe(ring.get(key));
    expect(ring.getBounded(key, {})).toBe(order[0]);
    // total 8, bound ceil(1.25 x 9 / 4) = 3: a node at 3 is full, at 2 has room.
    const loads = {
      [order[0] as string]: 3,
      [order[1] as string]: 3,
      [order[2] as string]: 2,
      [order[3] as string]: 0,
    };
    expect(ring.getBounded(key, loads)).toBe(order[2]);
    expect(ring.getBounded(Buffer.from(key), loads)).toBe(order[2]);
    // A larger c lets the first node take more.
    expect(ring.getBounded(key, loads, 2)).toBe(order[0]);
    expect(DEFAULT_BOUNDED_LOAD_FACTOR).toBe(1.25);
  });

  it('counts missing nodes as 0, ignores ids not in the ring and inherited properties', () => {
    const ring = new HashRing({ nodes: ['a', 'b'] });
    const key = 'k';
    const [first, second] = ring.getN(key, 2) as [string, string];
    // Only the first has load: total 2, bound ceil(1.25 x 3 / 2) = 2, so first (2) is full.
    expect(ring.getBounded(key, new Map([[first, 2]]))).toBe(second);
    expect(
      ring.getBounded(
        key,
        new Map<string, number>([
          [first, 2],
          ['ghost', 1000],
        ]),
      ),
    ).toBe(second);
    const inherited = Object.create({ [second]: 1000 }) as Record<string, number>;
    inherited[first] = 2;
    expect(ring.getBounded(key, inherited)).toBe(second);
    expect(ring.getBounded(key, new Map([[first, 0]]))).toBe(first);
  });

  it('works in ketama mode, and falls back to get(key) when only a pointless node has room', () => {
    const ring = new HashRing({
      hash: 'ketama',
      nodes: [
        { id: 'big', weight: 100 },
        { id: 'tiny', weight: 0.001 },
      ],
    });
    expect(ring.getN('k', 2)).toEqual(['big']); // 'tiny' has no points
    expect(ring.getBounded('k', { big: 10, tiny: 0 })).toBe('big');
    const four = new HashRing({ hash: 'ketama', nodes: ['a:1', 'b:1', 'c:1', 'd:1'] });
    const order = four.getN('k', 4);
    expect(four.getBounded('k', { [order[0] as string]: 5 })).toBe(order[1]);
  });

  it('returns undefined on an empty ring', () => {
    const ring = new HashRing();
    expect(ring.getBounded('k', new Map())).toBeUndefined();
    expect(ring.getBounded('k', {}, 3)).toBeUndefined();
  });

  it('rejects c <= 1 or not finite, and bad loads, with ERR_INVALID_OPTION naming the field', () => {
    const ring = new HashRing({ nodes: ['a', 'b'] });
    for (const c of [1, 0.99, 0, -2, Number.NaN, Number.POSITIVE_INFINITY, '2' as unknown as number]) {
      expect(() => ring.getBounded('k', {}, c)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_OPTION', field: 'c' }),
      );
      expect(() => new HashRing().getBounded('k', {}, c)).toThrow(/^c must be/);
    }
    for (const load of [-1, Number.NaN, Number.POSITIVE_INFINITY, '3', null]) {
      expect(() => ring.getBounded('k', { a: load as number })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_OPTION', field: 'loads["a"]' }),
      );
      expect(() => ring.getBounded('k', new Map([['b', load as number]]))).toThrow(/loads\["b"\]/);
    }
  });

  it('rejects loads that are neither a Map nor a plain object, and bad keys, with TypeError', () => {
    const ring = new HashRing({ nodes: ['a'] });
    for (const loads of [null, undefined, 5, 'a', [1, 2]]) {
      expect(() => ring.getBounded('k', loads as unknown as Map<string, number>)).toThrow(TypeError);
    }
    for (const key of [undefined, null, 42, {}]) {
      expect(() => ring.getBounded(key as unknown as string, {})).toThrow(TypeError);
    }
  });
});
