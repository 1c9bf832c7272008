// xxHash64 and xxHash32 (Yann Collet, https://github.com/Cyan4973/xxHash, spec in
// doc/xxhash_spec.md) over raw bytes in linear memory. Little-endian loads, as the spec says.

const P64_1: u64 = 0x9e3779b185ebca87;
const P64_2: u64 = 0xc2b2ae3d27d4eb4f;
const P64_3: u64 = 0x165667b19e3779f9;
const P64_4: u64 = 0x85ebca77c2b2ae63;
const P64_5: u64 = 0x27d4eb2f165667c5;

const P32_1: u32 = 0x9e3779b1;
const P32_2: u32 = 0x85ebca77;
const P32_3: u32 = 0xc2b2ae3d;
const P32_4: u32 = 0x27d4eb2f;
const P32_5: u32 = 0x165667b1;

// @ts-ignore: decorator
@inline
function round64(acc: u64, input: u64): u64 {
  acc += input * P64_2;
  acc = rotl<u64>(acc, 31);
  return acc * P64_1;
}

// @ts-ignore: decorator
@inline
function merge64(acc: u64, val: u64): u64 {
  acc ^= round64(0, val);
  return acc * P64_1 + P64_4;
}

/** xxHash64 of `len` bytes at `p`. */
export function xxh64(p: usize, len: usize, seed: u64): u64 {
  const end = p + len;
  let h: u64;
  if (len >= 32) {
    const limit = end - 32;
    let v1 = seed + P64_1 + P64_2;
    let v2 = seed + P64_2;
    let v3 = seed;
    let v4 = seed - P64_1;
    do {
      v1 = round64(v1, load<u64>(p));
      v2 = round64(v2, load<u64>(p, 8));
      v3 = round64(v3, load<u64>(p, 16));
      v4 = round64(v4, load<u64>(p, 24));
      p += 32;
    } while (p <= limit);
    h = rotl<u64>(v1, 1) + rotl<u64>(v2, 7) + rotl<u64>(v3, 12) + rotl<u64>(v4, 18);
    h = merge64(h, v1);
    h = merge64(h, v2);
    h = merge64(h, v3);
    h = merge64(h, v4);
  } else {
    h = seed + P64_5;
  }
  h += <u64>len;
  while (p + 8 <= end) {
    h ^= round64(0, load<u64>(p));
    h = rotl<u64>(h, 27) * P64_1 + P64_4;
    p += 8;
  }
  if (p + 4 <= end) {
    h ^= (<u64>load<u32>(p)) * P64_1;
    h = rotl<u64>(h, 23) * P64_2 + P64_3;
    p += 4;
  }
  while (p < end) {
    h ^= (<u64>load<u8>(p)) * P64_5;
    h = rotl<u64>(h, 11) * P64_1;
    p++;
  }
  h ^= h >> 33;
  h *= P64_2;
  h ^= h >> 29;
  h *= P64_3;
  h ^= h >> 32;
  return h;
}

// @ts-ignore: decorator
@inline
function round32(acc: u32, input: u32): u32 {
  acc += input * P32_2;
  acc = rotl<u32>(acc, 13);
  return acc * P32_1;
}

/** xxHash32 of `len` bytes at `p`. */
export function xxh32(p: usize, len: usize, seed: u32): u32 {
  const end = p + len;
  let h: u32;
  if (len >= 16) {
    const limit = end - 16;
    let v1 = seed + P32_1 + P32_2;
    let v2 = seed + P32_2;
    let v3 = seed;
    let v4 = seed - P32_1;
    do {
      v1 = round32(v1, load<u32>(p));
      v2 = round32(v2, load<u32>(p, 4));
      v3 = round32(v3, load<u32>(p, 8));
      v4 = round32(v4, load<u32>(p, 12));
      p += 16;
    } while (p <= limit);
    h = rotl<u32>(v1, 1) + rotl<u32>(v2, 7) + rotl<u32>(v3, 12) + rotl<u32>(v4, 18);
  } else {
    h = seed + P32_5;
  }
  h += <u32>len;
  while (p + 4 <= end) {
    h += load<u32>(p) * P32_3;
    h = rotl<u32>(h, 17) * P32_4;
    p += 4;
  }
  while (p < end) {
    h += (<u32>load<u8>(p)) * P32_5;
    h = rotl<u32>(h, 11) * P32_1;
    p++;
  }
  h ^= h >> 15;
  h *= P32_2;
  h ^= h >> 13;
  h *= P32_3;
  h ^= h >> 16;
  return h;
}
