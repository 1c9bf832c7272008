// The bench's plain-TypeScript baseline must give HashRing's answers, or the comparison
// in bench/ring.bench.ts would measure two different things.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TunedRing, tunedXxh64 } from '../../bench/tunedRing.js';
import { HashRing } from '../../src/index.js';
import { refXxh64 } from './reference.js';

describe('bench TunedRing (plain TypeScript baseline)', () => {
  it('computes xxHash64 like the reference', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        expect(tunedXxh64(bytes)).toBe(refXxh64(bytes));
      }),
      { numRuns: 1000 },
    );
    const ring = new TunedRing(['a', 'b', 'c', 'd', 'e'], 40);
    const wasm = new HashRing({ vnodes: 40, nodes: ['a', 'b', 'c', 'd', 'e'] });
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 70 }), fc.uint8Array({ maxLength: 70 })), (k) => {
        expect(ring.get(k)).toBe(wasm.get(k));
      }),
      { numRuns: 2000 },
    );
  });

  it('places 100k keys exactly as HashRing, after adds too', () => {
    const ids = Array.from({ length: 50 }, (_, i) => `node-${i}`);
    const keys = Array.from({ length: 100_000 }, (_, i) => `user:${i * 7919}`);
    const tuned = new TunedRing(ids);
    const wasm = new HashRing({ nodes: ids });
    expect(tuned.getMany(keys)).toEqual(wasm.getMany(keys));
    tuned.add('node-new');
    wasm.add('node-new');
    expect(tuned.getMany(keys)).toEqual(wasm.getMany(keys));
  });
});
