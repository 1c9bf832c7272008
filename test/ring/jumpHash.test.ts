import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import { xxh64 } from '../../src/ring/hash.js';
import { jumpHash, MAX_JUMP_BUCKETS } from '../../src/ring/jumpHash.js';
import { refXxh64 } from './reference.js';

const M64 = (1n << 64n) - 1n;

/**
 * The paper's JumpConsistentHash (Lamping & Veach 2014, Figure 1) in BigInt: the 64-bit LCG
 * exactly, and the double-precision step as the C code does it (an int64 -> double, a
 * double division, a truncating conversion back).
 */
function referenceJump(key: bigint, buckets: number): number {
  let b = -1n;
  let j = 0n;
  while (j < BigInt(buckets)) {
    b = j;
    key = (key * 2862933555777941757n + 1n) & M64;
    j = BigInt(Math.trunc(Number(b + 1n) * (2 ** 31 / Number((key >> 33n) + 1n))));
  }
  return Number(b);
}

const u64 = fc.bigInt({ min: 0n, max: M64 });

describe('jumpHash', () => {
  it('gives the reference bucket for every 64-bit key and bucket count (property)', () => {
    fc.assert(
      fc.property(u64, fc.integer({ min: 1, max: MAX_JUMP_BUCKETS }), (key, buckets) => {
        expect(jumpHash(key, buckets)).toBe(referenceJump(key, buckets));
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(u64, fc.integer({ min: 1, max: 1000 }), (key, buckets) => {
        expect(jumpHash(key, buckets)).toBe(referenceJump(key, buckets));
      }),
      { numRuns: 3000 },
    );
  });

  it('gives the published known answers, and 0 for one bucket or key 0', () => {
    // One bucket is always 0; key 0's first LCG step gives (0 x a + 1) >> 33 = 0, so its
    // first jump lands at 2^31, past every allowed count.
    for (const key of [0n, 1n, 42n, M64, 1n << 63n]) expect(jumpHash(key, 1)).toBe(0);
    expect(jumpHash(0n, MAX_JUMP_BUCKETS)).toBe(0);
    // Published known answers, shared by the jump hash ports in Go, Python, C and Elixir.
    const known: [bigint, number, number][] = [
      [1n, 1, 0],
      [42n, 57, 43],
      [0xdead10ccn, 1, 0],
      [0xdead10ccn, 666, 361],
      [256n, 1024, 520],
      [1n, 128, 55],
      [129n, 128, 120],
      [4n, 2, 1],
      [7n, 2, 0],
      [128n, 100_000_000, 38_172_097],
      [M64, 128, 92],
    ];
    for (const [key, buckets, bucket] of known) {
      expect(jumpHash(key, buckets)).toBe(bucket);
      expect(referenceJump(key, buckets)).toBe(bucket);
    }
  });

  it('hashes string and byte keys with xxHash64 (seed 0) of their UTF-8 bytes first', () => {
    const enc = new TextEncoder();
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 40 }),
        fc.integer({ min: 1, max: 100_000 }),
        (key, buckets) => {
          const bytes = enc.encode(key);
          const expected = referenceJump(refXxh64(bytes, 0n), buckets);
          expect(jumpHash(key, buckets)).toBe(expected);
          expect(jumpHash(bytes, buckets)).toBe(expected);
          expect(jumpHash(xxh64(key), buckets)).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('spreads keys evenly and moves only keys that land in a new bucket', () => {
    const keys = Array.from({ length: 50_000 }, (_, i) => `key:${i}`);
    const before = keys.map((k) => jumpHash(k, 10));
    const after = keys.map((k) => jumpHash(k, 11));
    const counts = new Array<number>(11).fill(0);
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      counts[after[i] as number] = (counts[after[i] as number] as number) + 1;
      if (before[i] !== after[i]) {
        moved++;
        expect(after[i]).toBe(10);
      }
    }
    expect(moved / keys.length).toBeGreaterThan(0.08);
    expect(moved / keys.length).toBeLessThan(0.1);
    expect(Math.max(...counts) / (keys.length / 11)).toBeLessThan(1.05);
  });

  it('rejects bucket counts outside [1, 2^31 - 1] and bigint keys outside 64 bits with ERR_INVALID_OPTION', () => {
    for (const buckets of [0, -1, 1.5, 2 ** 31, Number.NaN, Number.POSITIVE_INFINITY, '10' as unknown as number]) {
      expect(() => jumpHash('k', buckets)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_OPTION', field: 'buckets' }),
      );
      expect(() => jumpHash(1n, buckets)).toThrow(InvalidOptionError);
    }
    for (const key of [-1n, 1n << 64n]) {
      expect(() => jumpHash(key, 10)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION', field: 'key' }));
    }
    for (const key of [undefined, null, 42, {}, ['k']]) {
      expect(() => jumpHash(key as unknown as string, 10)).toThrow(TypeError);
    }
  });
});
