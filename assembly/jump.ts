// Jump consistent hash: J. Lamping and E. Veach, "A Fast, Minimal Memory, Consistent Hash
// Algorithm" (2014), arXiv:1406.2294. No table at all: the key drives a 64-bit linear
// congruential generator, and each step jumps to the next bucket count at which the key
// would move; the last jump below `buckets` is the answer. Expected O(ln buckets) steps.
// Growing from n to n + 1 buckets moves exactly the keys that land in the new bucket
// (1/(n + 1) of them in expectation); buckets can only be added or removed at the end.

import { xxh64 } from './xxhash';

/**
 * The paper's JumpConsistentHash, step for step: the same LCG multiplier, the same
 * double-precision division and the same truncation, so a 64-bit key gives the paper's
 * bucket. `buckets` must be >= 1. The product stays below 2^62, so the f64 -> i64
 * conversion never saturates.
 */
export function jumpHash(key: u64, buckets: i32): i32 {
  let b: i64 = -1;
  let j: i64 = 0;
  while (j < <i64>buckets) {
    b = j;
    key = key * 2862933555777941757 + 1;
    j = <i64>(<f64>(b + 1) * (2147483648.0 / <f64>((key >> 33) + 1)));
  }
  return <i32>b;
}

/** Jump hash of the xxHash64 (seed 0) of `len` key bytes at `p`. */
export function jumpHashBytes(p: usize, len: usize, buckets: i32): i32 {
  return jumpHash(xxh64(p, len, 0), buckets);
}
