// Consistent-hash ring tables in linear memory.
//
// A ring is a descriptor (six u32 fields, written by the TypeScript side) pointing at:
//   pos:   u64[n + 1], sorted ascending, pos[n] = u64.MAX_VALUE as a sentinel
//   own:   u32[n], the owner slot (index into the TypeScript node table) of each point
//   table: u32[2^bits + 1], table[b] = first index i with (pos[i] >> shift) >= b
// A lookup hashes the key, reads the bucket's [lo, hi] range from the prefix table and
// finishes with a branch-free lower bound (select, no data-dependent branch) in that range.
// The sentinel makes the range never empty, so the search needs no special case.

import { md5, md5Word } from './md5';
import { xxh32, xxh64 } from './xxhash';

export const HASH_XXH64: u32 = 0;
export const HASH_XXH32: u32 = 1;
/** libketama / `hashring`: the first 4 MD5 digest bytes as a little-endian u32. */
export const HASH_KETAMA: u32 = 2;

export const NO_OWNER: u32 = 0xffffffff;

const D_POS = 0;
const D_OWN = 4;
const D_N = 8;
const D_TABLE = 12;
const D_SHIFT = 16;
const D_KIND = 20;
/** Size in bytes of a ring descriptor. */
export const RING_DESC_SIZE: u32 = 24;

/**
 * Ring position of `len` key bytes at `p`. 32-bit hashes are moved to the high half so that
 * the prefix table, which buckets by the top bits, spreads them as it spreads 64-bit ones.
 */
// @ts-ignore: decorator
@inline
export function hashKey(kind: u32, p: usize, len: usize): u64 {
  if (kind == HASH_XXH64) return xxh64(p, len, 0);
  if (kind == HASH_KETAMA) return (<u64>md5Word(p, len)) << 32;
  return (<u64>xxh32(p, len, 0)) << 32;
}

/** Exported form of hashKey, for the TypeScript side's tests and tools. */
export function ringHash(kind: u32, p: usize, len: usize): u64 {
  return hashKey(kind, p, len);
}

/** Index of the first point at or after `h`, wrapping past the end to 0. Needs n >= 1. */
// @ts-ignore: decorator
@inline
function findIndex(desc: usize, h: u64): u32 {
  const pos = <usize>load<u32>(desc, D_POS);
  const n = load<u32>(desc, D_N);
  const table = <usize>load<u32>(desc, D_TABLE);
  const shift = <u64>load<u32>(desc, D_SHIFT);
  const b = <usize>(h >> shift);
  let base = load<u32>(table + (b << 2));
  // hi is the next bucket's first point, or n (the sentinel): pos[hi] >= h always holds.
  let len = load<u32>(table + ((b + 1) << 2)) - base + 1;
  while (len > 1) {
    const half = len >> 1;
    base = select<u32>(base + half, base, load<u64>(pos + ((<usize>(base + half - 1)) << 3)) < h);
    len -= half;
  }
  base += <u32>(load<u64>(pos + ((<usize>base) << 3)) < h);
  return select<u32>(0, base, base >= n);
}

/** Index of the first point at or after position `h` (for getN and bounded loads). */
export function ringFindIndex(desc: usize, h: u64): u32 {
  if (load<u32>(desc, D_N) == 0) return NO_OWNER;
  return findIndex(desc, h);
}

/** Index of the first point for key bytes at `p`, or NO_OWNER on an empty ring. */
export function ringIndexOf(desc: usize, p: usize, len: usize): u32 {
  if (load<u32>(desc, D_N) == 0) return NO_OWNER;
  return findIndex(desc, hashKey(load<u32>(desc, D_KIND), p, len));
}

/** Owner slot for key bytes at `p`, or NO_OWNER on an empty ring. */
export function ringLookup(desc: usize, p: usize, len: usize): u32 {
  if (load<u32>(desc, D_N) == 0) return NO_OWNER;
  const i = findIndex(desc, hashKey(load<u32>(desc, D_KIND), p, len));
  return load<u32>(<usize>load<u32>(desc, D_OWN) + ((<usize>i) << 2));
}

/**
 * Owner slots for `count` keys packed at `data`, key i spanning offsets[i]..offsets[i + 1].
 * Writes out[i]; every out[i] is NO_OWNER on an empty ring.
 */
export function ringLookupBatch(desc: usize, data: usize, offsets: usize, count: u32, out: usize): void {
  const n = load<u32>(desc, D_N);
  if (n == 0) {
    for (let i: u32 = 0; i < count; i++) store<u32>(out + ((<usize>i) << 2), NO_OWNER);
    return;
  }
  const kind = load<u32>(desc, D_KIND);
  const own = <usize>load<u32>(desc, D_OWN);
  let start = load<u32>(offsets);
  for (let i: u32 = 0; i < count; i++) {
    const o = offsets + ((<usize>(i + 1)) << 2);
    const end = load<u32>(o);
    const idx = findIndex(desc, hashKey(kind, data + start, end - start));
    store<u32>(out + ((<usize>i) << 2), load<u32>(own + ((<usize>idx) << 2)));
    start = end;
  }
}

/** Rebuilds the prefix table for the points in the descriptor. */
export function ringBuildTable(desc: usize): void {
  const pos = <usize>load<u32>(desc, D_POS);
  const n = load<u32>(desc, D_N);
  const table = <usize>load<u32>(desc, D_TABLE);
  const shift = <u64>load<u32>(desc, D_SHIFT);
  const buckets = <u32>(1 << (64 - <u32>shift));
  store<u64>(pos + ((<usize>n) << 3), u64.MAX_VALUE);
  let i: u32 = 0;
  for (let b: u32 = 0; b < buckets; b++) {
    while (i < n && <u32>(load<u64>(pos + ((<usize>i) << 3)) >> shift) < b) i++;
    store<u32>(table + ((<usize>b) << 2), i);
  }
  store<u32>(table + ((<usize>buckets) << 2), n);
}

/** Writes the decimal digits of `v` at `p`; returns how many. */
function writeDecimal(p: usize, v: u32): u32 {
  let digits: u32 = 1;
  for (let t = v; t >= 10; t /= 10) digits++;
  for (let k = digits; k > 0; k--) {
    store<u8>(p + k - 1, <u8>(48 + (v % 10)));
    v /= 10;
  }
  return digits;
}

/**
 * Positions of points `from` .. `from + count - 1` of one node: the hash of the node's
 * prefix (already at `prefix`, `prefixLen` bytes, e.g. "cache-a_") followed by the
 * decimal point index, as Envoy's ring hash does. Needs 10 free bytes after the prefix.
 */
export function ringPointPositions(kind: u32, prefix: usize, prefixLen: u32, from: u32, count: u32, out: usize): void {
  for (let i: u32 = 0; i < count; i++) {
    const len = prefixLen + writeDecimal(prefix + prefixLen, from + i);
    store<u64>(out + ((<usize>i) << 3), hashKey(kind, prefix, len));
  }
}

const ketamaDigest: usize = memory.data(16, 16);

/**
 * Positions of a ketama server's points, as libketama and the `hashring` npm package place
 * them: digest i (0 <= i < digests) is MD5 of the server's prefix (already at `prefix`, e.g.
 * "10.0.0.1:11211-") followed by the decimal i, and each digest gives 4 points, its
 * little-endian u32 words in order, each moved to the high half like every 32-bit hash.
 * Writes 4 x digests u64 at `out`. Needs 10 free bytes after the prefix.
 */
export function ringKetamaPositions(prefix: usize, prefixLen: u32, digests: u32, out: usize): void {
  for (let i: u32 = 0; i < digests; i++) {
    const len = prefixLen + writeDecimal(prefix + prefixLen, i);
    md5(prefix, len, ketamaDigest);
    const o = out + ((<usize>i) << 5);
    store<u64>(o, (<u64>load<u32>(ketamaDigest, 0)) << 32, 0);
    store<u64>(o, (<u64>load<u32>(ketamaDigest, 4)) << 32, 8);
    store<u64>(o, (<u64>load<u32>(ketamaDigest, 8)) << 32, 16);
    store<u64>(o, (<u64>load<u32>(ketamaDigest, 12)) << 32, 24);
  }
}

let radixCounts: usize = 0;

/**
 * Stable sort of n (pos, own) pairs by pos. Inputs under 256 (one node's points) use insertion
 * sort, cheaper than clearing the radix counts; larger ones an
 * LSD radix sort with 16-bit digits, skipping digits that every key shares. tmpPos/tmpOwn are
 * scratch of the same sizes. Stability is what makes ties keep the caller's (name) order.
 */
export function ringSortPoints(pos: usize, own: usize, n: u32, tmpPos: usize, tmpOwn: usize): void {
  if (n < 256) {
    for (let i: u32 = 1; i < n; i++) {
      const p = load<u64>(pos + ((<usize>i) << 3));
      const o = load<u32>(own + ((<usize>i) << 2));
      let j = i;
      while (j > 0 && load<u64>(pos + ((<usize>(j - 1)) << 3)) > p) {
        store<u64>(pos + ((<usize>j) << 3), load<u64>(pos + ((<usize>(j - 1)) << 3)));
        store<u32>(own + ((<usize>j) << 2), load<u32>(own + ((<usize>(j - 1)) << 2)));
        j--;
      }
      store<u64>(pos + ((<usize>j) << 3), p);
      store<u32>(own + ((<usize>j) << 2), o);
    }
    return;
  }
  if (radixCounts == 0) radixCounts = heap.alloc(65536 << 2);
  const counts = radixCounts;
  let srcPos = pos;
  let srcOwn = own;
  let dstPos = tmpPos;
  let dstOwn = tmpOwn;
  for (let shift: u64 = 0; shift < 64; shift += 16) {
    memory.fill(counts, 0, 65536 << 2);
    for (let i: u32 = 0; i < n; i++) {
      const d = <usize>((load<u64>(srcPos + ((<usize>i) << 3)) >> shift) & 0xffff);
      store<u32>(counts + (d << 2), load<u32>(counts + (d << 2)) + 1);
    }
    const first = <usize>((load<u64>(srcPos) >> shift) & 0xffff);
    if (load<u32>(counts + (first << 2)) == n) continue; // every key shares this digit
    let sum: u32 = 0;
    for (let d: usize = 0; d < 65536; d++) {
      const c = load<u32>(counts + (d << 2));
      store<u32>(counts + (d << 2), sum);
      sum += c;
    }
    for (let i: u32 = 0; i < n; i++) {
      const p = load<u64>(srcPos + ((<usize>i) << 3));
      const d = <usize>((p >> shift) & 0xffff);
      const at = load<u32>(counts + (d << 2));
      store<u32>(counts + (d << 2), at + 1);
      store<u64>(dstPos + ((<usize>at) << 3), p);
      store<u32>(dstOwn + ((<usize>at) << 2), load<u32>(srcOwn + ((<usize>i) << 2)));
    }
    const tp = srcPos;
    srcPos = dstPos;
    dstPos = tp;
    const to = srcOwn;
    srcOwn = dstOwn;
    dstOwn = to;
  }
  if (srcPos != pos) {
    memory.copy(pos, srcPos, (<usize>n) << 3);
    memory.copy(own, srcOwn, (<usize>n) << 2);
  }
}

/**
 * Merges two sorted point lists into out (which must not overlap either). On equal
 * positions a's point goes first. Returns the number of equal positions met, so that the
 * caller can order those ties by node name.
 */
export function ringMergePoints(
  aPos: usize,
  aOwn: usize,
  na: u32,
  bPos: usize,
  bOwn: usize,
  nb: u32,
  outPos: usize,
  outOwn: usize,
): u32 {
  let i: u32 = 0;
  let j: u32 = 0;
  let k: usize = 0;
  let ties: u32 = 0;
  while (i < na && j < nb) {
    const pa = load<u64>(aPos + ((<usize>i) << 3));
    const pb = load<u64>(bPos + ((<usize>j) << 3));
    if (pa == pb) ties++;
    if (pa <= pb) {
      store<u64>(outPos + (k << 3), pa);
      store<u32>(outOwn + (k << 2), load<u32>(aOwn + ((<usize>i) << 2)));
      i++;
    } else {
      store<u64>(outPos + (k << 3), pb);
      store<u32>(outOwn + (k << 2), load<u32>(bOwn + ((<usize>j) << 2)));
      j++;
    }
    k++;
  }
  memory.copy(outPos + (k << 3), aPos + ((<usize>i) << 3), (<usize>(na - i)) << 3);
  memory.copy(outOwn + (k << 2), aOwn + ((<usize>i) << 2), (<usize>(na - i)) << 2);
  k += <usize>(na - i);
  memory.copy(outPos + (k << 3), bPos + ((<usize>j) << 3), (<usize>(nb - j)) << 3);
  memory.copy(outOwn + (k << 2), bOwn + ((<usize>j) << 2), (<usize>(nb - j)) << 2);
  return ties;
}

/**
 * Removes every point owned by `slot`, in place, keeping order, and renames `lastSlot` to
 * `slot` so that the TypeScript node table stays dense. Returns the new count.
 */
export function ringRemoveOwner(pos: usize, own: usize, n: u32, slot: u32, lastSlot: u32): u32 {
  let k: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const o = load<u32>(own + ((<usize>i) << 2));
    if (o != slot) {
      store<u64>(pos + ((<usize>k) << 3), load<u64>(pos + ((<usize>i) << 3)));
      store<u32>(own + ((<usize>k) << 2), select<u32>(slot, o, o == lastSlot));
      k++;
    }
  }
  return k;
}

/** First i >= from with pos[i] == pos[i + 1], or n when there is none. */
export function ringNextTie(pos: usize, n: u32, from: u32): u32 {
  for (let i = from; i + 1 < n; i++) {
    if (load<u64>(pos + ((<usize>i) << 3)) == load<u64>(pos + ((<usize>(i + 1)) << 3))) return i;
  }
  return n;
}

/**
 * Merges k sorted new points into the ring's n sorted points in place (pos/own have room for
 * n + k), from the back so that nothing is overwritten before it is read. On equal positions
 * the existing point stays first. Returns the number of equal positions met.
 */
export function ringInsertPoints(pos: usize, own: usize, n: u32, bPos: usize, bOwn: usize, k: u32): u32 {
  let i = <i64>n - 1;
  let j = <i64>k - 1;
  let w = <i64>(n + k) - 1;
  let ties: u32 = 0;
  while (j >= 0) {
    const pb = load<u64>(bPos + (<usize>j << 3));
    if (i >= 0) {
      const pa = load<u64>(pos + (<usize>i << 3));
      if (pa == pb) ties++;
      if (pa > pb) {
        store<u64>(pos + (<usize>w << 3), pa);
        store<u32>(own + (<usize>w << 2), load<u32>(own + (<usize>i << 2)));
        i--;
        w--;
        continue;
      }
    }
    store<u64>(pos + (<usize>w << 3), pb);
    store<u32>(own + (<usize>w << 2), load<u32>(bOwn + (<usize>j << 2)));
    j--;
    w--;
  }
  return ties;
}

/**
 * Updates the prefix table after k sorted points (at bPos) were inserted, instead of
 * rebuilding it: every bucket after a new point's bucket starts that many points later.
 * The descriptor's n must already count the new points.
 */
export function ringTableInsert(desc: usize, bPos: usize, k: u32): void {
  const pos = <usize>load<u32>(desc, D_POS);
  const n = load<u32>(desc, D_N);
  const table = <usize>load<u32>(desc, D_TABLE);
  const shift = <u64>load<u32>(desc, D_SHIFT);
  const buckets = <u32>(1 << (64 - <u32>shift));
  store<u64>(pos + ((<usize>n) << 3), u64.MAX_VALUE);
  let j: u32 = 0;
  let added: u32 = 0;
  let b: u32 = <u32>(load<u64>(bPos) >> shift) + 1;
  while (b < buckets) {
    // New points in buckets below b.
    while (j < k && <u32>(load<u64>(bPos + ((<usize>j) << 3)) >> shift) < b) {
      j++;
      added++;
    }
    if (j == k) break;
    const next = <u32>(load<u64>(bPos + ((<usize>j) << 3)) >> shift) + 1;
    for (; b < next; b++) store<u32>(table + ((<usize>b) << 2), load<u32>(table + ((<usize>b) << 2)) + added);
  }
  for (; b < buckets; b++) store<u32>(table + ((<usize>b) << 2), load<u32>(table + ((<usize>b) << 2)) + k);
  store<u32>(table + ((<usize>buckets) << 2), n);
}
