/**
 * The fastest consistent-hash ring we know how to write in plain TypeScript, as the bench's
 * honest baseline for "is WebAssembly worth it": the same xxHash64 points and keys as
 * HashRing (so the answers are identical, which test/ring/tunedRing.test.ts checks), 64-bit
 * positions as two sorted Uint32Arrays, a prefix table in front of the search, a 16-bit
 * LSD radix sort for the build, and xxHash64 on 32-bit halves without BigInt.
 */

// A u64 is (hi, lo), both unsigned 32-bit numbers. Results land in these registers.
let rH = 0;
let rL = 0;

/** (aH:aL) * (bH:bL) mod 2^64 into rH:rL, on 16-bit limbs so no product loses precision. */
function mul(aH: number, aL: number, bH: number, bL: number): void {
  const a48 = aH >>> 16;
  const a32 = aH & 0xffff;
  const a16 = aL >>> 16;
  const a00 = aL & 0xffff;
  const b48 = bH >>> 16;
  const b32 = bH & 0xffff;
  const b16 = bL >>> 16;
  const b00 = bL & 0xffff;
  let c00 = a00 * b00;
  let c16 = c00 >>> 16;
  c00 &= 0xffff;
  c16 += a16 * b00;
  let c32 = c16 >>> 16;
  c16 &= 0xffff;
  c16 += a00 * b16;
  c32 += c16 >>> 16;
  c16 &= 0xffff;
  c32 += a32 * b00;
  let c48 = c32 >>> 16;
  c32 &= 0xffff;
  c32 += a16 * b16;
  c48 += c32 >>> 16;
  c32 &= 0xffff;
  c32 += a00 * b32;
  c48 += c32 >>> 16;
  c32 &= 0xffff;
  c48 += a48 * b00 + a32 * b16 + a16 * b32 + a00 * b48;
  c48 &= 0xffff;
  rH = ((c48 << 16) | c32) >>> 0;
  rL = ((c16 << 16) | c00) >>> 0;
}

function add(aH: number, aL: number, bH: number, bL: number): void {
  const lo = aL + bL;
  rL = lo >>> 0;
  rH = (aH + bH + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

const P1H = 0x9e3779b1;
const P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d;
const P2L = 0x27d4eb4f;
const P3H = 0x165667b1;
const P3L = 0x9e3779f9;
const P4H = 0x85ebca77;
const P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f;
const P5L = 0x165667c5;

function u32le(b: Uint8Array, i: number): number {
  return (
    ((b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24)) >>> 0
  );
}

/** round(acc, input) = rotl(acc + input * P2, 31) * P1, into rH:rL. */
function round(accH: number, accL: number, inH: number, inL: number): void {
  mul(inH, inL, P2H, P2L);
  add(accH, accL, rH, rL);
  const h = rH;
  const l = rL;
  mul(((h << 31) | (l >>> 1)) >>> 0, ((l << 31) | (h >>> 1)) >>> 0, P1H, P1L);
}

function rotl(h: number, l: number, r: number): void {
  rH = ((h << r) | (l >>> (32 - r))) >>> 0;
  rL = ((l << r) | (h >>> (32 - r))) >>> 0;
}

/** xxHash64 (seed 0) of bytes b[0..n) into rH:rL. */
export function xxh64Halves(b: Uint8Array, n: number): void {
  let i = 0;
  let hH: number;
  let hL: number;
  if (n >= 32) {
    add(P1H, P1L, P2H, P2L);
    let v1H = rH;
    let v1L = rL;
    let v2H = P2H;
    let v2L = P2L;
    let v3H = 0;
    let v3L = 0;
    // 0 - P1
    let v4H = ~P1H >>> 0; // P1's low word is not 0, so no borrow into the high word
    let v4L = (~P1L + 1) >>> 0;
    while (i + 32 <= n) {
      round(v1H, v1L, u32le(b, i + 4), u32le(b, i));
      v1H = rH;
      v1L = rL;
      round(v2H, v2L, u32le(b, i + 12), u32le(b, i + 8));
      v2H = rH;
      v2L = rL;
      round(v3H, v3L, u32le(b, i + 20), u32le(b, i + 16));
      v3H = rH;
      v3L = rL;
      round(v4H, v4L, u32le(b, i + 28), u32le(b, i + 24));
      v4H = rH;
      v4L = rL;
      i += 32;
    }
    rotl(v1H, v1L, 1);
    hH = rH;
    hL = rL;
    rotl(v2H, v2L, 7);
    add(hH, hL, rH, rL);
    hH = rH;
    hL = rL;
    rotl(v3H, v3L, 12);
    add(hH, hL, rH, rL);
    hH = rH;
    hL = rL;
    rotl(v4H, v4L, 18);
    add(hH, hL, rH, rL);
    hH = rH;
    hL = rL;
    const vs = [v1H, v1L, v2H, v2L, v3H, v3L, v4H, v4L];
    for (let k = 0; k < 8; k += 2) {
      round(0, 0, vs[k] as number, vs[k + 1] as number);
      mul((hH ^ rH) >>> 0, (hL ^ rL) >>> 0, P1H, P1L);
      add(rH, rL, P4H, P4L);
      hH = rH;
      hL = rL;
    }
  } else {
    hH = P5H;
    hL = P5L;
  }
  add(hH, hL, 0, n);
  hH = rH;
  hL = rL;
  while (i + 8 <= n) {
    round(0, 0, u32le(b, i + 4), u32le(b, i));
    rotl((hH ^ rH) >>> 0, (hL ^ rL) >>> 0, 27);
    mul(rH, rL, P1H, P1L);
    add(rH, rL, P4H, P4L);
    hH = rH;
    hL = rL;
    i += 8;
  }
  if (i + 4 <= n) {
    mul(0, u32le(b, i), P1H, P1L);
    rotl((hH ^ rH) >>> 0, (hL ^ rL) >>> 0, 23);
    mul(rH, rL, P2H, P2L);
    add(rH, rL, P3H, P3L);
    hH = rH;
    hL = rL;
    i += 4;
  }
  while (i < n) {
    mul(0, b[i] as number, P5H, P5L);
    rotl((hH ^ rH) >>> 0, (hL ^ rL) >>> 0, 11);
    mul(rH, rL, P1H, P1L);
    hH = rH;
    hL = rL;
    i++;
  }
  // avalanche
  hL = (hL ^ (hH >>> 1)) >>> 0;
  mul(hH, hL, P2H, P2L);
  hH = rH;
  hL = (rL ^ ((rL >>> 29) | (rH << 3))) >>> 0;
  hH = (hH ^ (hH >>> 29)) >>> 0;
  mul(hH, hL, P3H, P3L);
  rL = (rL ^ rH) >>> 0;
}

/** xxHash64 (seed 0) as a bigint, for tests. */
export function tunedXxh64(b: Uint8Array): bigint {
  xxh64Halves(b, b.length);
  return (BigInt(rH) << 32n) | BigInt(rL);
}

const encoder = new TextEncoder();

/** The tuned plain-TypeScript ring. Lookups allocate nothing for ASCII keys. */
export class TunedRing {
  ids: string[] = [];
  private hi = new Uint32Array(0);
  private lo = new Uint32Array(0);
  private own = new Uint32Array(0);
  private table = new Uint32Array(0);
  private shift = 31;
  private buf = new Uint8Array(256);

  constructor(
    nodes: readonly string[],
    readonly vnodes = 160,
  ) {
    for (const id of nodes) this.ids.push(id);
    this.build();
  }

  /** Hashes every point and sorts them all: the full build. */
  build(): void {
    const order = this.ids
      .map((_, i) => i)
      .sort((a, b) => ((this.ids[a] as string) < (this.ids[b] as string) ? -1 : 1));
    const n = this.ids.length * this.vnodes;
    const hi = new Uint32Array(n);
    const lo = new Uint32Array(n);
    const own = new Uint32Array(n);
    let at = 0;
    for (const slot of order) {
      const id = this.ids[slot] as string;
      for (let i = 0; i < this.vnodes; i++) {
        const len = this.encode(`${id}_${i}`);
        xxh64Halves(this.buf, len);
        hi[at] = rH;
        lo[at] = rL;
        own[at] = slot;
        at++;
      }
    }
    radixSort(hi, lo, own);
    this.hi = hi;
    this.lo = lo;
    this.own = own;
    this.buildTable();
  }

  private buildTable(): void {
    const n = this.hi.length;
    const bits = Math.min(20, Math.max(1, 32 - Math.clz32(n)));
    this.shift = 32 - bits;
    const buckets = 1 << bits;
    const table = new Uint32Array(buckets + 1);
    let i = 0;
    for (let b = 0; b < buckets; b++) {
      while (i < n && (this.hi[i] as number) >>> this.shift < b) i++;
      table[b] = i;
    }
    table[buckets] = n;
    this.table = table;
  }

  private encode(key: string): number {
    const n = key.length;
    if (n * 3 > this.buf.length) this.buf = new Uint8Array(n * 3);
    const buf = this.buf;
    for (let i = 0; i < n; i++) {
      const c = key.charCodeAt(i);
      if (c > 0x7f) return encoder.encodeInto(key, buf).written;
      buf[i] = c;
    }
    return n;
  }

  /** Slot of the owner of the first point at or after hash (h:l). */
  private find(h: number, l: number): number {
    const hi = this.hi;
    const lo = this.lo;
    const n = hi.length;
    const b = h >>> this.shift;
    let base = this.table[b] as number;
    let len = (this.table[b + 1] as number) - base;
    while (len > 0) {
      const half = len >>> 1;
      const m = base + half;
      const mh = hi[m] as number;
      if (mh < h || (mh === h && (lo[m] as number) < l)) {
        base = m + 1;
        len -= half + 1;
      } else {
        len = half;
      }
    }
    return this.own[base === n ? 0 : base] as number;
  }

  get(key: string | Uint8Array): string | undefined {
    if (this.hi.length === 0) return undefined;
    if (typeof key === 'string') xxh64Halves(this.buf, this.encode(key));
    else xxh64Halves(key, key.length);
    return this.ids[this.find(rH, rL)];
  }

  getMany(keys: readonly (string | Uint8Array)[]): (string | undefined)[] {
    const out = new Array<string | undefined>(keys.length);
    for (let i = 0; i < keys.length; i++) out[i] = this.get(keys[i] as string);
    return out;
  }

  /** Adds a node: hash its points, sort them, merge with the existing arrays. */
  add(id: string): void {
    const slot = this.ids.push(id) - 1;
    const k = this.vnodes;
    const bh = new Uint32Array(k);
    const bl = new Uint32Array(k);
    const bo = new Uint32Array(k).fill(slot);
    for (let i = 0; i < k; i++) {
      xxh64Halves(this.buf, this.encode(`${id}_${i}`));
      bh[i] = rH;
      bl[i] = rL;
    }
    radixSort(bh, bl, bo);
    const n = this.hi.length;
    const hi = new Uint32Array(n + k);
    const lo = new Uint32Array(n + k);
    const own = new Uint32Array(n + k);
    let i = 0;
    let j = 0;
    for (let o = 0; o < n + k; o++) {
      const takeA =
        j >= k ||
        (i < n &&
          ((this.hi[i] as number) < (bh[j] as number) ||
            ((this.hi[i] as number) === (bh[j] as number) && (this.lo[i] as number) <= (bl[j] as number))));
      if (takeA) {
        hi[o] = this.hi[i] as number;
        lo[o] = this.lo[i] as number;
        own[o] = this.own[i] as number;
        i++;
      } else {
        hi[o] = bh[j] as number;
        lo[o] = bl[j] as number;
        own[o] = bo[j] as number;
        j++;
      }
    }
    this.hi = hi;
    this.lo = lo;
    this.own = own;
    this.buildTable();
  }
}

/** Stable LSD radix sort of (hi, lo, own) by the 64-bit key, 16-bit digits. */
function radixSort(hi: Uint32Array, lo: Uint32Array, own: Uint32Array): void {
  const n = hi.length;
  let sh: Uint32Array = hi;
  let sl: Uint32Array = lo;
  let so: Uint32Array = own;
  let dh: Uint32Array = new Uint32Array(n);
  let dl: Uint32Array = new Uint32Array(n);
  let dO: Uint32Array = new Uint32Array(n);
  const counts = new Uint32Array(65536);
  for (let pass = 0; pass < 4; pass++) {
    const word = pass < 2 ? sl : sh;
    const shift = (pass & 1) * 16;
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const d = ((word[i] as number) >>> shift) & 0xffff;
      counts[d] = (counts[d] as number) + 1;
    }
    let sum = 0;
    for (let d = 0; d < 65536; d++) {
      const c = counts[d] as number;
      counts[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const d = ((word[i] as number) >>> shift) & 0xffff;
      const at = counts[d] as number;
      counts[d] = at + 1;
      dh[at] = sh[i] as number;
      dl[at] = sl[i] as number;
      dO[at] = so[i] as number;
    }
    [sh, dh] = [dh, sh];
    [sl, dl] = [dl, sl];
    [so, dO] = [dO, so];
  }
  // Four passes: the sorted data is back in the caller's arrays.
}
