/**
 * The oracle: a plain TypeScript ring written for obviousness, not speed. BigInt xxHash
 * straight from the spec (doc/xxhash_spec.md), points sorted by (position, node id), a
 * binary search. HashRing must agree with it on every member set and key.
 */

const M64 = (1n << 64n) - 1n;
const P64 = [0x9e3779b185ebca87n, 0xc2b2ae3d27d4eb4fn, 0x165667b19e3779f9n, 0x85ebca77c2b2ae63n, 0x27d4eb2f165667c5n];
const P32 = [0x9e3779b1n, 0x85ebca77n, 0xc2b2ae3dn, 0x27d4eb2fn, 0x165667b1n];
const M32 = 0xffffffffn;

const rotl64 = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M64;
const rotl32 = (x: bigint, r: bigint) => ((x << r) | (x >> (32n - r))) & M32;
const le = (b: Uint8Array, at: number, n: number) => {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[at + i] as number);
  return v;
};

function round64(acc: bigint, input: bigint): bigint {
  acc = (acc + input * (P64[1] as bigint)) & M64;
  return (rotl64(acc, 31n) * (P64[0] as bigint)) & M64;
}

export function refXxh64(b: Uint8Array, seed = 0n): bigint {
  const [p1, p2, p3, p4, p5] = P64 as [bigint, bigint, bigint, bigint, bigint];
  let i = 0;
  let h: bigint;
  if (b.length >= 32) {
    let v = [(seed + p1 + p2) & M64, (seed + p2) & M64, seed, (seed - p1) & M64];
    while (i + 32 <= b.length) {
      v = v.map((x, k) => round64(x, le(b, i + k * 8, 8)));
      i += 32;
    }
    h =
      (rotl64(v[0] as bigint, 1n) +
        rotl64(v[1] as bigint, 7n) +
        rotl64(v[2] as bigint, 12n) +
        rotl64(v[3] as bigint, 18n)) &
      M64;
    for (const x of v) h = ((((h ^ round64(0n, x)) * p1) & M64) + p4) & M64;
  } else {
    h = (seed + p5) & M64;
  }
  h = (h + BigInt(b.length)) & M64;
  for (; i + 8 <= b.length; i += 8) h = (((rotl64(h ^ round64(0n, le(b, i, 8)), 27n) * p1) & M64) + p4) & M64;
  if (i + 4 <= b.length) {
    h = (((rotl64(h ^ ((le(b, i, 4) * p1) & M64), 23n) * p2) & M64) + p3) & M64;
    i += 4;
  }
  for (; i < b.length; i++) h = (rotl64(h ^ ((BigInt(b[i] as number) * p5) & M64), 11n) * p1) & M64;
  h ^= h >> 33n;
  h = (h * p2) & M64;
  h ^= h >> 29n;
  h = (h * p3) & M64;
  h ^= h >> 32n;
  return h;
}

export function refXxh32(b: Uint8Array, seed = 0n): bigint {
  const [p1, p2, p3, p4, p5] = P32 as [bigint, bigint, bigint, bigint, bigint];
  const round = (acc: bigint, input: bigint) => (rotl32((acc + input * p2) & M32, 13n) * p1) & M32;
  let i = 0;
  let h: bigint;
  if (b.length >= 16) {
    let v = [(seed + p1 + p2) & M32, (seed + p2) & M32, seed, (seed - p1) & M32];
    while (i + 16 <= b.length) {
      v = v.map((x, k) => round(x, le(b, i + k * 4, 4)));
      i += 16;
    }
    h =
      (rotl32(v[0] as bigint, 1n) +
        rotl32(v[1] as bigint, 7n) +
        rotl32(v[2] as bigint, 12n) +
        rotl32(v[3] as bigint, 18n)) &
      M32;
  } else {
    h = (seed + p5) & M32;
  }
  h = (h + BigInt(b.length)) & M32;
  for (; i + 4 <= b.length; i += 4) h = (rotl32((h + le(b, i, 4) * p3) & M32, 17n) * p4) & M32;
  for (; i < b.length; i++) h = (rotl32((h + BigInt(b[i] as number) * p5) & M32, 11n) * p1) & M32;
  h ^= h >> 15n;
  h = (h * p2) & M32;
  h ^= h >> 13n;
  h = (h * p3) & M32;
  h ^= h >> 16n;
  return h;
}

const utf8 = new TextEncoder();

export type RefHash = 'xxh64' | 'xxh32';

/** Ring position of bytes, 32-bit hashes in the high half as HashRing stores them. */
export function refPosition(hash: RefHash, bytes: Uint8Array): bigint {
  return hash === 'xxh64' ? refXxh64(bytes) : refXxh32(bytes) << 32n;
}

interface Point {
  pos: bigint;
  id: string;
}

/** The reference ring. Same point rule as HashRing: round(vnodes x weight), at least 1. */
export class ReferenceRing {
  private readonly members = new Map<string, number>();
  private points: Point[] = [];
  constructor(
    readonly vnodes = 160,
    readonly hash: RefHash = 'xxh64',
  ) {}

  add(id: string, weight = 1): void {
    this.members.set(id, weight);
    const count = Math.max(1, Math.round(this.vnodes * weight));
    for (let i = 0; i < count; i++) this.points.push({ pos: refPosition(this.hash, utf8.encode(`${id}_${i}`)), id });
    this.points.sort((a, b) => (a.pos < b.pos ? -1 : a.pos > b.pos ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  remove(id: string): void {
    this.members.delete(id);
    this.points = this.points.filter((p) => p.id !== id);
  }

  private indexOf(key: string | Uint8Array): number {
    const h = refPosition(this.hash, typeof key === 'string' ? utf8.encode(key) : key);
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.points[mid] as Point).pos < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.points.length ? 0 : lo;
  }

  get(key: string | Uint8Array): string | undefined {
    if (this.points.length === 0) return undefined;
    return (this.points[this.indexOf(key)] as Point).id;
  }

  getN(key: string | Uint8Array, n: number): string[] {
    const out: string[] = [];
    if (this.points.length === 0) return out;
    let i = this.indexOf(key);
    for (let steps = 0; steps < this.points.length && out.length < Math.min(n, this.members.size); steps++) {
      const id = (this.points[i] as Point).id;
      if (!out.includes(id)) out.push(id);
      i = (i + 1) % this.points.length;
    }
    return out;
  }

  allPoints(): readonly Point[] {
    return this.points;
  }
}
