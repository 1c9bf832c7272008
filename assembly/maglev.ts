// Maglev hashing: D. E. Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016, section 3.4. Each node i has a preference list over the M table
// entries, permutation[i][j] = (offset_i + j * skip_i) mod M with offset_i = h1(i) mod M and
// skip_i = h2(i) mod (M - 1) + 1; M prime makes every list a full permutation. Nodes take
// turns claiming their next preferred entry that is still empty until the table is full
// (the paper's Pseudocode 1), so entries per node differ by at most a few and a lookup is
// one hash and one load: entry[hash(key) mod M].
//
// The paper's numbers: M should be prime and larger than 100 x N "to ensure at most a 1%
// difference in hash space assigned to backends"; its evaluation uses M = 65537 (the default
// here) for up to 1000 backends, and shows that removing backends remaps few entries beyond
// the removed ones (not zero, as a ring would: Maglev trades a little disruption for balance).
//
// Weights: the paper notes that weighted backends are served by changing how often each
// backend gets a turn. Here node i with weight w_i takes its k-th turn in round
// ceil(k x wmax / w_i) (computed as ceil(k x (wmax / w_i)) in f64, the same on every
// machine), in node order within a round; with equal weights that is exactly the paper's
// round robin. A binary heap keyed by (round, node) picks the next turn, so a build costs
// O(M log N) turns whatever the weights, plus the probing of the preference lists; equal
// weights skip the heap (plain round robin, about 3x faster to build).

import { xxh64 } from './xxhash';

const NO_OWNER: u32 = 0xffffffff;

// Scratch arrays of one build (set by maglevBuild, read by the heap helpers).
let dueAt: usize = 0; // f64[n]: round of each node's next turn
let heapAt: usize = 0; // u32[n]: binary min-heap of node indexes

// @ts-ignore: decorator
@inline
function before(a: u32, b: u32): bool {
  const da = load<f64>(dueAt + ((<usize>a) << 3));
  const db = load<f64>(dueAt + ((<usize>b) << 3));
  return da < db || (da == db && a < b);
}

function siftDown(k: u32, n: u32): void {
  const node = load<u32>(heapAt + ((<usize>k) << 2));
  while (true) {
    let child: u32 = 2 * k + 1;
    if (child >= n) break;
    const right = child + 1;
    if (right < n && before(load<u32>(heapAt + ((<usize>right) << 2)), load<u32>(heapAt + ((<usize>child) << 2)))) {
      child = right;
    }
    const c = load<u32>(heapAt + ((<usize>child) << 2));
    if (!before(c, node)) break;
    store<u32>(heapAt + ((<usize>k) << 2), c);
    k = child;
  }
  store<u32>(heapAt + ((<usize>k) << 2), node);
}

/**
 * Fills `table` (u32[m], m prime >= 2) for `n` nodes whose names are packed at `data`
 * (name i spans offsets[i]..offsets[i + 1], in the caller's canonical order) with weights
 * f64[n] at `weights`, every one > 0. Entry values are node indexes; an empty node list
 * leaves every entry NO_OWNER. offset_i = xxh64(name, 0) mod m, skip_i = xxh64(name, 1)
 * mod (m - 1) + 1.
 */
export function maglevBuild(data: usize, offsets: usize, n: u32, weights: usize, m: u32, table: usize): void {
  memory.fill(table, 0xff, (<usize>m) << 2);
  if (n == 0) return;
  const un = <usize>n;
  // One allocation: due f64[n] first (8-byte aligned), then next, skip, turns, heap u32[n].
  const scratch = heap.alloc(un * 24);
  dueAt = scratch;
  const nextAt = scratch + (un << 3);
  const skipAt = nextAt + (un << 2);
  const turnsAt = skipAt + (un << 2);
  heapAt = turnsAt + (un << 2);
  let wmax: f64 = 0;
  for (let i: usize = 0; i < un; i++) wmax = max(wmax, load<f64>(weights + (i << 3)));
  const mm = <u64>m;
  for (let i: usize = 0; i < un; i++) {
    const start = load<u32>(offsets + (i << 2));
    const len = load<u32>(offsets + ((i + 1) << 2)) - start;
    store<u32>(nextAt + (i << 2), <u32>(xxh64(data + start, len, 0) % mm));
    store<u32>(skipAt + (i << 2), <u32>(xxh64(data + start, len, 1) % (mm - 1)) + 1);
    store<u32>(turnsAt + (i << 2), 1);
    // The first turn's round: ceil(1 x ratio).
    store<f64>(dueAt + (i << 3), Math.ceil(wmax / load<f64>(weights + (i << 3))));
    store<u32>(heapAt + (i << 2), <u32>i);
  }
  let filled: u32 = 0;
  let equal = true;
  for (let i: usize = 0; i < un; i++) equal = equal && load<f64>(weights + (i << 3)) == wmax;
  if (equal) {
    // Equal weights: the paper's plain round robin, which the heap would reproduce exactly.
    while (true) {
      for (let i: usize = 0; i < un; i++) {
        const skip = load<u32>(skipAt + (i << 2));
        let c = load<u32>(nextAt + (i << 2));
        while (load<u32>(table + ((<usize>c) << 2)) != NO_OWNER) {
          c += skip;
          if (c >= m) c -= m;
        }
        store<u32>(table + ((<usize>c) << 2), <u32>i);
        if (++filled == m) {
          heap.free(scratch);
          return;
        }
        c += skip;
        if (c >= m) c -= m;
        store<u32>(nextAt + (i << 2), c);
      }
    }
  }
  for (let k = <i32>(n >> 1) - 1; k >= 0; k--) siftDown(<u32>k, n);
  while (true) {
    const i = <usize>load<u32>(heapAt);
    const skip = load<u32>(skipAt + (i << 2));
    let c = load<u32>(nextAt + (i << 2));
    while (load<u32>(table + ((<usize>c) << 2)) != NO_OWNER) {
      c += skip;
      if (c >= m) c -= m;
    }
    store<u32>(table + ((<usize>c) << 2), <u32>i);
    if (++filled == m) break;
    c += skip;
    if (c >= m) c -= m;
    store<u32>(nextAt + (i << 2), c);
    const k = load<u32>(turnsAt + (i << 2)) + 1;
    store<u32>(turnsAt + (i << 2), k);
    const ratio = wmax / load<f64>(weights + (i << 3));
    store<f64>(dueAt + (i << 3), Math.ceil(<f64>k * ratio));
    siftDown(0, n);
  }
  heap.free(scratch);
}

/** The table entry for `len` key bytes at `p`: table[xxh64(key, 0) mod m]. */
export function maglevLookup(table: usize, m: u32, p: usize, len: usize): u32 {
  return load<u32>(table + ((<usize>(xxh64(p, len, 0) % <u64>m)) << 2));
}

/** Table entries for `count` keys packed at `data` (key i spans offsets[i]..offsets[i + 1]). */
export function maglevLookupBatch(table: usize, m: u32, data: usize, offsets: usize, count: u32, out: usize): void {
  const mm = <u64>m;
  let start = load<u32>(offsets);
  for (let i: u32 = 0; i < count; i++) {
    const end = load<u32>(offsets + ((<usize>(i + 1)) << 2));
    const e = <usize>(xxh64(data + start, end - start, 0) % mm);
    store<u32>(out + ((<usize>i) << 2), load<u32>(table + (e << 2)));
    start = end;
  }
}
