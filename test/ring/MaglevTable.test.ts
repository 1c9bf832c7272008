import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import {
  MAX_MAGLEV_SIZE,
  type MaglevNodeInput,
  MaglevTable,
  resolveMaglevOptions,
} from '../../src/ring/MaglevTable.js';
import { refXxh64 } from './reference.js';

const utf8 = new TextEncoder();

/**
 * The oracle, written for obviousness: the paper's Pseudocode 1 with the weighted turn rule
 * (node i's k-th turn in round ceil(k x wmax / w_i), node order within a round), spec xxHash
 * in BigInt, and a scan over rounds instead of a heap.
 */
function referenceTable(nodes: { id: string; weight: number }[], m: number): number[] {
  const sorted = nodes.slice().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const n = sorted.length;
  const entry = new Array<number>(m).fill(-1);
  if (n === 0) return entry;
  const wmax = Math.max(...sorted.map((s) => s.weight));
  const next = sorted.map((s) => Number(refXxh64(utf8.encode(s.id), 0n) % BigInt(m)));
  const skip = sorted.map((s) => Number(refXxh64(utf8.encode(s.id), 1n) % BigInt(m - 1)) + 1);
  const ratio = sorted.map((s) => wmax / s.weight);
  const turns = sorted.map(() => 1);
  const due = ratio.map((r) => Math.ceil(r));
  let filled = 0;
  while (filled < m) {
    const round = Math.min(...due);
    for (let i = 0; i < n && filled < m; i++) {
      if (due[i] !== round) continue;
      let c = next[i] as number;
      while (entry[c] !== -1) c = (c + (skip[i] as number)) % m;
      entry[c] = i;
      filled++;
      next[i] = (c + (skip[i] as number)) % m;
      turns[i] = (turns[i] as number) + 1;
      due[i] = Math.ceil((turns[i] as number) * (ratio[i] as number));
    }
  }
  return entry;
}

function lookup(table: number[], ids: string[], key: string): string | undefined {
  const e = table[Number(refXxh64(utf8.encode(key), 0n) % BigInt(table.length))] as number;
  return e === -1 ? undefined : ids[e];
}

function names(n: number, prefix = 'node'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
}

const keys = Array.from({ length: 100_000 }, (_, i) => `conn:${((i * 2654435761) >>> 0).toString(16)}:${i}`);

describe('MaglevTable agrees with the reference table', () => {
  it('on random members, weights and prime sizes (property)', () => {
    const primes = [2, 3, 13, 101, 257, 1009, 4099];
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.oneof(
            fc.stringMatching(/^[a-z][a-z0-9-]{0,9}$/),
            fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }),
          ),
          {
            maxLength: 12,
          },
        ),
        fc.array(fc.constantFrom(0.1, 0.5, 1, 1, 1, 2, 3.7, 10), { minLength: 12, maxLength: 12 }),
        fc.constantFrom(...primes),
        fc.array(fc.string({ maxLength: 16 }), { maxLength: 20 }),
        (ids, weights, size, ks) => {
          fc.pre(ids.length <= size);
          const nodes = ids.map((id, i) => ({ id, weight: weights[i] as number }));
          const table = new MaglevTable(nodes, { size });
          const ref = referenceTable(nodes, size);
          const sortedIds = table.nodes as string[];
          const counts = new Map(sortedIds.map((id) => [id, 0]));
          for (const e of ref)
            if (e !== -1) counts.set(sortedIds[e] as string, (counts.get(sortedIds[e] as string) ?? 0) + 1);
          expect(table.counts()).toEqual(counts);
          for (const k of ks) expect(table.get(k)).toBe(lookup(ref, sortedIds, k));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('on 100 nodes at the default size, entry for entry, weighted and equal (the round-robin path)', () => {
    for (const weight of [(i: number) => 1 + (i % 3), () => 2.5]) {
      const nodes = names(100).map((id, i) => ({ id, weight: weight(i) }));
      const table = new MaglevTable(nodes);
      const ref = referenceTable(nodes, 65537);
      const sample = keys.slice(0, 20_000);
      expect(table.getMany(sample)).toEqual(sample.map((k) => lookup(ref, table.nodes as string[], k)));
    }
  });
});

describe('MaglevTable', () => {
  it('has default size 65537 and gives equal-weight nodes entry counts that differ by at most 1', () => {
    for (const n of [1, 3, 100, 1000]) {
      const table = new MaglevTable(names(n));
      expect(table.size).toBe(65537);
      const counts = [...table.counts().values()];
      expect(counts).toHaveLength(n);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(65537);
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    }
  });

  it('spreads keys as evenly as its entries (max/mean under 1.05 for 100 nodes, 1M-key scale)', () => {
    const table = new MaglevTable(names(100));
    const load = new Map<string, number>();
    for (const node of table.getMany(keys)) load.set(node as string, (load.get(node as string) ?? 0) + 1);
    expect(load.size).toBe(100);
    const max = Math.max(...load.values());
    expect(max / (keys.length / 100)).toBeLessThan(1.1);
  });

  it('remaps close to 1% of keys when one of 100 nodes leaves, and every key of that node', () => {
    const all = names(100);
    const before = new MaglevTable(all);
    const after = new MaglevTable(all.filter((id) => id !== 'node-42'));
    const a = before.getMany(keys);
    const b = after.getMany(keys);
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (a[i] === 'node-42') expect(b[i]).not.toBe('node-42');
      if (a[i] !== b[i]) moved++;
    }
    const fraction = moved / keys.length;
    // Ideal is 1%; Maglev moves a little more (the paper's trade of stability for balance).
    expect(fraction).toBeGreaterThanOrEqual(0.009);
    expect(fraction).toBeLessThan(0.025);
    // Adding it back restores the original table.
    expect(new MaglevTable([...all.filter((id) => id !== 'node-42'), 'node-42']).getMany(keys)).toEqual(a);
  });

  it('gives entries in proportion to weight', () => {
    const nodes = [
      { id: 'a', weight: 1 },
      { id: 'b', weight: 2 },
      { id: 'c', weight: 3.5 },
      { id: 'd', weight: 0.5 },
    ];
    const table = new MaglevTable(nodes);
    const total = nodes.reduce((s, n) => s + n.weight, 0);
    for (const node of nodes) {
      const expected = (65537 * node.weight) / total;
      expect(Math.abs((table.counts().get(node.id) as number) - expected)).toBeLessThanOrEqual(3);
      expect(table.weightOf(node.id)).toBe(node.weight);
    }
    // Weights scale: the same ratios give the same table.
    const scaled = new MaglevTable(nodes.map((n) => ({ id: n.id, weight: n.weight * 4 })));
    expect(scaled.counts()).toEqual(table.counts());
    expect(table.weightOf('zz')).toBeUndefined();
  });

  it('builds the identical table from any node order', () => {
    const nodes: MaglevNodeInput[] = names(50).map((id, i) => (i % 4 === 0 ? { id, weight: 2 } : id));
    const base = new MaglevTable(nodes);
    const sample = keys.slice(0, 20_000);
    const expected = base.getManyIndices(sample);
    fc.assert(
      fc.property(fc.shuffledSubarray(nodes, { minLength: nodes.length, maxLength: nodes.length }), (order) => {
        const table = new MaglevTable(order);
        expect(table.nodes).toEqual(base.nodes);
        expect(table.getManyIndices(sample)).toEqual(expected);
      }),
      { numRuns: 10 },
    );
  });

  it('answers the same through get, getIndex, getMany, getManyIndices, for strings and bytes', () => {
    const table = new MaglevTable(['x', 'y', 'ключ', '🙂'], { size: 1009 });
    const sample = [...keys.slice(0, 500), '', 'é', '🙂🙂', 'a'.repeat(1000)];
    const many = table.getMany(sample);
    const bytes = sample.map((k) => utf8.encode(k));
    expect(table.getMany(bytes)).toEqual(many);
    const out = new Uint32Array(sample.length + 5);
    expect(table.getManyIndices(bytes, out)).toBe(out);
    sample.forEach((k, i) => {
      expect(table.get(k)).toBe(many[i]);
      expect(table.get(bytes[i] as Uint8Array)).toBe(many[i]);
      expect(table.nodes[table.getIndex(k)]).toBe(many[i]);
      expect(table.nodes[out[i] as number]).toBe(many[i]);
    });
    expect(table.getMany([])).toEqual([]);
    expect(table.has('x')).toBe(true);
    expect(table.has('z')).toBe(false);
  });

  it('round-trips through toJSON/fromJSON', () => {
    const table = new MaglevTable([{ id: 'b', weight: 2 }, 'a', 'c'], { size: 10007 });
    const json = table.toJSON();
    expect(json).toEqual({
      version: 1,
      size: 10007,
      nodes: [
        { id: 'a', weight: 1 },
        { id: 'b', weight: 2 },
        { id: 'c', weight: 1 },
      ],
    });
    for (const copy of [MaglevTable.fromJSON(json), MaglevTable.fromJSON(JSON.stringify(table))]) {
      expect(copy.size).toBe(10007);
      expect(copy.counts()).toEqual(table.counts());
      expect(copy.getMany(keys.slice(0, 5000))).toEqual(table.getMany(keys.slice(0, 5000)));
    }
  });

  it('maps every key to undefined when it has no nodes', () => {
    const table = new MaglevTable([], { size: 13 });
    expect(table.get('k')).toBeUndefined();
    expect(table.getIndex('k')).toBe(0xffffffff);
    expect(table.getMany(['a', 'b'])).toEqual([undefined, undefined]);
    expect([...table.getManyIndices(['a'])]).toEqual([0xffffffff]);
    expect(table.counts().size).toBe(0);
    expect(table.nodes).toEqual([]);
    expect(new MaglevTable().size).toBe(65537);
  });

  it('rejects a size that is not a prime in range with ERR_INVALID_OPTION naming it', () => {
    for (const size of [65536, 1, 0, -7, 4, 9, 65537.5, Number.NaN, MAX_MAGLEV_SIZE + 2, 2 ** 31 - 1]) {
      let caught: unknown;
      try {
        new MaglevTable(['a'], { size });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(InvalidOptionError);
      expect(caught).toMatchObject({ code: 'ERR_INVALID_OPTION', field: 'size' });
      expect((caught as Error).message).toContain(String(size));
    }
    expect(() => new MaglevTable(['a'], { size: '65537' as unknown as number })).toThrow(/size/);
    expect(() => new MaglevTable(['a'], null as unknown as object)).toThrow(/options/);
    expect(new MaglevTable(['a'], { size: 2 }).counts()).toEqual(new Map([['a', 2]]));
    expect(resolveMaglevOptions({ size: MAX_MAGLEV_SIZE }).size).toBe(MAX_MAGLEV_SIZE);
    expect(resolveMaglevOptions().size).toBe(65537);
  });

  it('rejects bad nodes: ids, weights, duplicates, more nodes than entries', () => {
    const bad: [unknown, RegExp][] = [
      [[''], /nodes\[0\]/],
      [[5], /nodes\[0\]/],
      [[null], /nodes\[0\]/],
      [['a', { id: 'b', weight: 0 }], /nodes\[1\]\.weight/],
      [[{ id: 'b', weight: -1 }], /nodes\[0\]\.weight/],
      [[{ id: 'b', weight: Number.NaN }], /nodes\[0\]\.weight/],
      [[{ id: 'b', weight: Number.POSITIVE_INFINITY }], /nodes\[0\]\.weight/],
      [[{ id: 'b', weight: '2' }], /nodes\[0\]\.weight/],
      [[{ weight: 2 }], /nodes\[0\]\.id/],
      [['a', 'b', 'a'], /nodes\[2\]\.id must be unique/],
      ['abc', /nodes must be an array/],
      [['a', 'b', 'c', 'd'], /at most size \(3\)/],
    ];
    for (const [nodes, message] of bad) {
      expect(() => new MaglevTable(nodes as MaglevNodeInput[], { size: 3 })).toThrow(message);
      expect(() => new MaglevTable(nodes as MaglevNodeInput[], { size: 3 })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_OPTION' }),
      );
    }
  });

  it('rejects bad keys with TypeError, a short out array and a bad JSON version with ERR_INVALID_OPTION', () => {
    const table = new MaglevTable(['a', 'b'], { size: 13 });
    for (const key of [undefined, null, 42, {}, ['k'], 1n]) {
      expect(() => table.get(key as unknown as string)).toThrow(TypeError);
      expect(() => table.getIndex(key as unknown as string)).toThrow(TypeError);
    }
    expect(() => table.getMany(['a', 7 as unknown as string])).toThrow(/keys\[1\]/);
    expect(() => table.getMany(null as unknown as string[])).toThrow(TypeError);
    expect(() => table.getManyIndices(['a', 'b'], new Uint32Array(1))).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION', field: 'out' }),
    );
    expect(() => MaglevTable.fromJSON({ version: 2 } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION', field: 'json.version' }),
    );
    expect(() => MaglevTable.fromJSON('{"version":1,"size":10,"nodes":[]}')).toThrow(/size/);
    expect(() => MaglevTable.fromJSON('null')).toThrow(InvalidOptionError);
  });
});
