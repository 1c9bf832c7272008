import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { xxh32, xxh64 } from '../../src/index.js';
import { refXxh32, refXxh64 } from './reference.js';

const utf8 = new TextEncoder();

describe('xxHash in WebAssembly', () => {
  it('matches the published vectors (xxhsum, python-xxhash)', () => {
    expect(xxh64('').toString(16)).toBe('ef46db3751d8e999');
    expect(xxh64('abc').toString(16)).toBe('44bc2cf5ad770999');
    expect(xxh32('').toString(16)).toBe('2cc5d05');
    expect(xxh32('abc').toString(16)).toBe('32d153ff');
    expect(xxh64('Nobody inspects the spammish repetition').toString(16)).toBe('fbcea83c8a378bf1');
    expect(xxh32('Nobody inspects the spammish repetition').toString(16)).toBe('e2293b2f');
  });

  it('agrees with the BigInt reference for every length and seed (all code paths)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.nat(0xffffffff),
        (bytes, s64, s32) => {
          expect(xxh64(bytes, s64)).toBe(refXxh64(bytes, s64));
          expect(xxh32(bytes, s32)).toBe(Number(refXxh32(bytes, BigInt(s32))));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('hashes a string as its UTF-8 bytes, non-ASCII included', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => {
        expect(xxh64(s)).toBe(xxh64(utf8.encode(s)));
        expect(xxh64(s)).toBe(refXxh64(utf8.encode(s)));
      }),
    );
    // Lone surrogates encode as U+FFFD, as TextEncoder does.
    expect(xxh64('\ud800')).toBe(refXxh64(utf8.encode('\ud800')));
  });

  it('throws a TypeError for keys that are neither strings nor bytes', () => {
    expect(() => xxh64(42 as unknown as string)).toThrow(TypeError);
    expect(() => xxh32(null as unknown as string)).toThrow(TypeError);
  });
});
