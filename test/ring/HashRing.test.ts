import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HashRing, InvalidOptionError, MAX_RING_POINTS, RingwayError } from '../../src/index.js';
import { wasmCore } from '../../src/wasm/index.js';
import { ReferenceRing, type RefHash } from './reference.js';

const utf8 = new TextEncoder();
const nodeId = fc.oneof(
  fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }),
);
const key = fc.oneof(fc.string({ maxLength: 24 }), fc.string({ unit: 'grapheme', maxLength: 12 }));

function sampleKeys(n: number, prefix = 'key'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}:${i}`);
}

describe('HashRing agrees with the reference ring', () => {
  for (const hash of ['xxh64', 'xxh32'] as RefHash[]) {
    it(`on random members, weights, adds, removes and keys (${hash})`, () => {
      const op = fc.oneof(
        fc.record({ kind: fc.constant('add' as const), id: nodeId, weight: fc.constantFrom(0.25, 0.5, 1, 1.5, 3) }),
        fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
      );
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 40 }),
          fc.array(op, { maxLength: 14 }),
          fc.array(key, { maxLength: 30 }),
          (vnodes, ops, keys) => {
            const ring = new HashRing({ vnodes, hash });
            const ref = new ReferenceRing(vnodes, hash);
            for (const o of ops) {
              if (o.kind === 'add') {
                if (ring.has(o.id)) continue;
                ring.add(o.id, { weight: o.weight });
                ref.add(o.id, o.weight);
              } else if (ring.size > 0) {
                const id = ring.nodes[o.pick % ring.size] as string;
                expect(ring.remove(id)).toBe(true);
                ref.remove(id);
              }
            }
            expect(ring.pointCount).toBe(ref.allPoints().length);
            for (const k of keys) {
              expect(ring.get(k)).toBe(ref.get(k));
              expect(ring.get(utf8.encode(k))).toBe(ref.get(k));
              expect(ring.getN(k, 3)).toEqual(ref.getN(k, 3));
            }
            expect(ring.getMany(keys)).toEqual(keys.map((k) => ref.get(k)));
            expect(ring.getMany(keys.map((k) => utf8.encode(k)))).toEqual(keys.map((k) => ref.get(k)));
          },
        ),
        { numRuns: 150 },
      );
    });
  }

  it('stores exactly the reference points, in the reference order', () => {
    const ring = new HashRing({ vnodes: 20, nodes: ['a', { id: 'b', weight: 2 }, 'ключ', '🙂'] });
    const ref = new ReferenceRing(20);
    ref.add('a');
    ref.add('b', 2);
    ref.add('ключ');
    ref.add('🙂');
    expect(ring.points64().map((p) => [p.position, p.node])).toEqual(ref.allPoints().map((p) => [p.pos, p.id]));
  });
});

describe('HashRing placement', () => {
  it('builds the same ring from the same members in any order, in bulk or one by one', () => {
    fc.assert(
      fc.property(fc.uniqueArray(nodeId, { minLength: 1, maxLength: 12 }), fc.integer(), (ids, seed) => {
        const shuffled = ids.slice().sort((a, b) => ((a.length * 31 + seed) % 7) - ((b.length * 31 + seed) % 7));
        const bulk = new HashRing({ vnodes: 16, nodes: ids });
        const incremental = new HashRing({ vnodes: 16 });
        for (const id of shuffled) incremental.add(id);
        expect(incremental.points64()).toEqual(bulk.points64());
        expect(incremental.toJSON()).toEqual(bulk.toJSON());
      }),
      { numRuns: 60 },
    );
  });

  it('breaks ties between equal positions by node id, whatever the insertion order', () => {
    // 32-bit positions collide by the birthday bound: 200 nodes x 1000 points give a few ties.
    const ids = Array.from({ length: 200 }, (_, i) => `n${i}`);
    const bulk = new HashRing({ vnodes: 1000, hash: 'xxh32', nodes: ids });
    const points = bulk.points64();
    const ties = points.filter((p, i) => i > 0 && p.position === (points[i - 1] as { position: bigint }).position);
    expect(ties.length).toBeGreaterThan(0);
    for (let i = 1; i < points.length; i++) {
      const a = points[i - 1] as { position: bigint; node: string };
      const b = points[i] as { position: bigint; node: string };
      expect(a.position < b.position || (a.position === b.position && a.node <= b.node)).toBe(true);
    }
    const reversed = new HashRing({ vnodes: 1000, hash: 'xxh32' });
    for (const id of ids.slice().reverse()) reversed.add(id);
    expect(reversed.points64()).toEqual(points);
    const forward = new HashRing({ vnodes: 1000, hash: 'xxh32' });
    for (const id of ids) forward.add(id);
    expect(forward.points64()).toEqual(points);
  });

  it('moves only keys that go to an added node, and only keys of a removed node', () => {
    const keys = sampleKeys(20_000);
    const ring = new HashRing({ nodes: Array.from({ length: 10 }, (_, i) => `node-${i}`) });
    const before = ring.getMany(keys);
    ring.add('node-new');
    const added = ring.getMany(keys);
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (added[i] !== before[i]) {
        expect(added[i]).toBe('node-new');
        moved++;
      }
    }
    expect(moved / keys.length).toBeGreaterThan(0.05);
    expect(moved / keys.length).toBeLessThan(0.14); // about 1/11
    ring.remove('node-3');
    const removed = ring.getMany(keys);
    for (let i = 0; i < keys.length; i++) {
      if (removed[i] !== added[i]) expect(added[i]).toBe('node-3');
    }
    expect(removed.includes('node-3')).toBe(false);
  });

  it('scales points with weight and spreads keys in proportion', () => {
    const ring = new HashRing({ nodes: ['a', { id: 'b', weight: 3 }] });
    expect(ring.pointCount).toBe(160 + 480);
    const keys = sampleKeys(40_000);
    const b = ring.getMany(keys).filter((n) => n === 'b').length / keys.length;
    expect(b).toBeGreaterThan(0.68);
    expect(b).toBeLessThan(0.82);
    expect(new HashRing({ vnodes: 10, nodes: [{ id: 'tiny', weight: 0.01 }] }).pointCount).toBe(1);
  });

  it('balances 100 nodes within the usual bound for 160 points each', () => {
    const ring = new HashRing({ nodes: Array.from({ length: 100 }, (_, i) => `cache-${i}`) });
    const counts = new Map<string, number>();
    for (const n of ring.getMany(sampleKeys(200_000))) counts.set(n as string, (counts.get(n as string) ?? 0) + 1);
    const max = Math.max(...counts.values());
    expect(counts.size).toBe(100);
    expect(max / 2000).toBeLessThan(1.4);
  });

  it('gives getN distinct nodes, get(key) first, at most size of them', () => {
    const ring = new HashRing({ nodes: ['a', 'b', 'c', 'd'] });
    for (const k of sampleKeys(200)) {
      const n = ring.getN(k, 10);
      expect(n).toHaveLength(4);
      expect(new Set(n).size).toBe(4);
      expect(n[0]).toBe(ring.get(k));
    }
    expect(ring.getN('x', 0)).toEqual([]);
  });

  it('maps a byte key and a string to the same node, and getManyIndices to slots of nodes', () => {
    const ring = new HashRing({ nodes: ['a', 'b', 'c'] });
    const keys = sampleKeys(1000);
    const idx = ring.getManyIndices(keys);
    const out = new Uint32Array(2000);
    expect(
      ring.getManyIndices(
        keys.map((k) => Buffer.from(k)),
        out,
      ),
    ).toBe(out);
    for (let i = 0; i < keys.length; i++) {
      expect(ring.nodes[idx[i] as number]).toBe(ring.get(keys[i] as string));
      expect(out[i]).toBe(idx[i]);
      expect(ring.getIndex(keys[i] as string)).toBe(idx[i]);
    }
    const mixed = ['user:1', Buffer.from('user:1'), new Uint8Array(utf8.encode('user:1'))];
    expect(new Set(ring.getMany(mixed)).size).toBe(1);
  });
});

describe('HashRing edge cases', () => {
  it('answers undefined / empty on an empty ring, and after removing the last node', () => {
    const ring = new HashRing();
    expect(ring.get('x')).toBeUndefined();
    expect(ring.getN('x', 3)).toEqual([]);
    expect(ring.getMany(['a', 'b'])).toEqual([undefined, undefined]);
    expect(Array.from(ring.getManyIndices(['a']))).toEqual([0xffffffff]);
    ring.add('only');
    expect(ring.get('x')).toBe('only');
    expect(ring.remove('only')).toBe(true);
    expect(ring.remove('only')).toBe(false);
    expect(ring.get('x')).toBeUndefined();
    expect(ring.size).toBe(0);
    expect(ring.pointCount).toBe(0);
  });

  it('handles keys larger than any buffer and batches that grow WASM memory', () => {
    const ring = new HashRing({ vnodes: 8, nodes: ['a', 'b', 'c'] });
    const ref = new ReferenceRing(8);
    for (const id of ['a', 'b', 'c']) ref.add(id);
    const big = 'x'.repeat(200_000);
    const bigUnicode = 'ж'.repeat(100_000);
    expect(ring.get(big)).toBe(ref.get(big));
    expect(ring.get(bigUnicode)).toBe(ref.get(bigUnicode));
    const many = Array.from({ length: 300_000 }, (_, i) => (i % 1000 === 0 ? `ключ-${i}-${'y'.repeat(500)}` : `k${i}`));
    const got = ring.getMany(many);
    for (let i = 0; i < many.length; i += 997) expect(got[i]).toBe(ref.get(many[i] as string));
    expect(ring.get('k1')).toBe(ref.get('k1'));
  });

  it('round-trips through JSON', () => {
    const ring = new HashRing({ vnodes: 50, hash: 'xxh32', nodes: ['a', { id: 'b', weight: 2.5 }] });
    const copy = HashRing.fromJSON(JSON.stringify(ring));
    expect(copy.toJSON()).toEqual(ring.toJSON());
    expect(copy.getMany(sampleKeys(500))).toEqual(ring.getMany(sampleKeys(500)));
    expect(ring.toJSON()).toEqual({
      version: 1,
      hash: 'xxh32',
      vnodes: 50,
      nodes: [
        { id: 'a', weight: 1 },
        { id: 'b', weight: 2.5 },
      ],
    });
  });
});

describe('HashRing bad input', () => {
  const invalid = (fn: () => unknown, field: string) => {
    let caught: unknown;
    try {
      fn();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidOptionError);
    expect(caught).toBeInstanceOf(RingwayError);
    expect((caught as RingwayError).code).toBe('ERR_INVALID_OPTION');
    expect((caught as InvalidOptionError).field).toBe(field);
    expect((caught as Error).message).toContain(field);
  };

  it('rejects options out of range with ERR_INVALID_OPTION naming the field and value', () => {
    invalid(() => new HashRing({ vnodes: 0 }), 'vnodes');
    invalid(() => new HashRing({ vnodes: 1.5 }), 'vnodes');
    invalid(() => new HashRing({ vnodes: '160' as unknown as number }), 'vnodes');
    invalid(() => new HashRing({ hash: 'md4' as 'xxh64' }), 'hash');
    invalid(() => new HashRing({ nodes: 'a' as unknown as string[] }), 'nodes');
    invalid(() => new HashRing({ nodes: ['a', 'a'] }), 'nodes[1].id');
    invalid(() => new HashRing({ nodes: [''] }), 'nodes[0]');
    invalid(() => new HashRing({ nodes: [42 as unknown as string] }), 'nodes[0]');
    invalid(() => new HashRing({ nodes: [{ id: 'a', weight: 0 }] }), 'nodes[0].weight');
    invalid(() => new HashRing({ nodes: [{ id: 'a', weight: -1 }] }), 'nodes[0].weight');
    invalid(() => new HashRing({ nodes: [{ id: 'a', weight: Number.NaN }] }), 'nodes[0].weight');
    invalid(() => new HashRing({ nodes: [{ id: 'a', weight: Number.POSITIVE_INFINITY }] }), 'nodes[0].weight');
    invalid(() => new HashRing({ vnodes: 1000, nodes: [{ id: 'a', weight: 5000 }] }), 'nodes[0].weight');
    invalid(() => new HashRing({ nodes: ['x'.repeat(1025)] }), 'nodes[0]');
    expect(() => new HashRing({ vnodes: 0 })).toThrow(/vnodes must be an integer in \[1, 1000000\], got 0/);
  });

  it('rejects bad add/getN arguments and leaves the ring intact', () => {
    const ring = new HashRing({ nodes: ['a', 'b'] });
    const before = ring.getMany(sampleKeys(100));
    invalid(() => ring.add('a'), 'id');
    invalid(() => ring.add(''), 'id');
    invalid(() => ring.add('c', { weight: 0 }), 'weight');
    invalid(() => ring.getN('k', -1), 'n');
    invalid(() => ring.getN('k', 1.5), 'n');
    invalid(() => ring.getManyIndices(['a', 'b'], new Uint32Array(1)), 'out');
    expect(ring.size).toBe(2);
    expect(ring.getMany(sampleKeys(100))).toEqual(before);
  });

  it('throws a TypeError for keys that are neither strings nor bytes, and keeps working', () => {
    const ring = new HashRing({ nodes: ['a', 'b'] });
    const before = ring.get('user:1');
    for (const bad of [42, null, undefined, {}, ['a'], 1n, Symbol('s')]) {
      expect(() => ring.get(bad as unknown as string)).toThrow(TypeError);
      expect(() => ring.getN(bad as unknown as string, 2)).toThrow(TypeError);
    }
    expect(() => ring.getMany(['a', 7 as unknown as string, 'c'])).toThrow(/keys\[1\]/);
    expect(() => ring.getMany(null as unknown as string[])).toThrow(TypeError);
    expect(ring.get('user:1')).toBe(before);
    expect(ring.getMany(['user:1'])).toEqual([before]);
  });

  it('rejects JSON of another version', () => {
    expect(() => HashRing.fromJSON({ version: 2 } as never)).toThrow(InvalidOptionError);
    expect(() => HashRing.fromJSON('{"version":1,"hash":"xxh64","vnodes":0,"nodes":[]}')).toThrow(/vnodes/);
  });
});

describe('HashRing size limits (found in review)', () => {
  it('refuses a ring of more than MAX_RING_POINTS points with a typed error, before any allocation', () => {
    // 40 nodes x 1e6 points: 40M points. The byte sizes once wrapped modulo 2^32 in WASM, and
    // the build wrote past its allocation over other rings' memory.
    const nodes = Array.from({ length: 40 }, (_, i) => `h${i}`);
    expect(() => new HashRing({ vnodes: 1_000_000, nodes })).toThrow(InvalidOptionError);
    expect(() => new HashRing({ vnodes: 1_000_000, nodes })).toThrow(/nodes.*more than 33554432 points/);
    expect(() => new HashRing({ vnodes: 1_000_000, hash: 'ketama', nodes })).toThrow(InvalidOptionError);
    expect(MAX_RING_POINTS).toBe(2 ** 25);
  });

  it('the WASM allocator never takes a size that would wrap', () => {
    expect(() => wasmCore().alloc(2 ** 31)).toThrow(RangeError);
  });
});
