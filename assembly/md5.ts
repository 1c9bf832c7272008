// MD5 (RFC 1321), for the ketama-compatible ring mode: libketama and the `hashring` npm
// package place points and keys with MD5. Not for security: MD5 is broken as a cryptographic
// hash; here it is only the function every ketama client agrees on.
//
// MD5 reads its input as little-endian 32-bit words and writes its digest as the four state
// words in little-endian order, which is WebAssembly's byte order: a digest's bytes 4j..4j+3
// read as a u32 are simply state word j, which is how ketama turns one digest into 4 points.

// @ts-ignore: decorator
@inline
function ff(a: u32, b: u32, c: u32, d: u32, x: u32, s: u32, t: u32): u32 {
  return rotl<u32>(a + ((b & c) | (~b & d)) + x + t, s) + b;
}

// @ts-ignore: decorator
@inline
function gg(a: u32, b: u32, c: u32, d: u32, x: u32, s: u32, t: u32): u32 {
  return rotl<u32>(a + ((b & d) | (c & ~d)) + x + t, s) + b;
}

// @ts-ignore: decorator
@inline
function hh(a: u32, b: u32, c: u32, d: u32, x: u32, s: u32, t: u32): u32 {
  return rotl<u32>(a + (b ^ c ^ d) + x + t, s) + b;
}

// @ts-ignore: decorator
@inline
function ii(a: u32, b: u32, c: u32, d: u32, x: u32, s: u32, t: u32): u32 {
  return rotl<u32>(a + (c ^ (b | ~d)) + x + t, s) + b;
}

// The state (RFC 1321 section 3.3: A, B, C, D), read by md5Word and md5.
let s0: u32 = 0;
let s1: u32 = 0;
let s2: u32 = 0;
let s3: u32 = 0;

/** One 64-byte block at p (RFC 1321 section 3.4), unrolled, constants T[i] inline. */
function block(p: usize): void {
  const x0 = load<u32>(p, 0);
  const x1 = load<u32>(p, 4);
  const x2 = load<u32>(p, 8);
  const x3 = load<u32>(p, 12);
  const x4 = load<u32>(p, 16);
  const x5 = load<u32>(p, 20);
  const x6 = load<u32>(p, 24);
  const x7 = load<u32>(p, 28);
  const x8 = load<u32>(p, 32);
  const x9 = load<u32>(p, 36);
  const x10 = load<u32>(p, 40);
  const x11 = load<u32>(p, 44);
  const x12 = load<u32>(p, 48);
  const x13 = load<u32>(p, 52);
  const x14 = load<u32>(p, 56);
  const x15 = load<u32>(p, 60);
  let a = s0;
  let b = s1;
  let c = s2;
  let d = s3;

  a = ff(a, b, c, d, x0, 7, 0xd76aa478);
  d = ff(d, a, b, c, x1, 12, 0xe8c7b756);
  c = ff(c, d, a, b, x2, 17, 0x242070db);
  b = ff(b, c, d, a, x3, 22, 0xc1bdceee);
  a = ff(a, b, c, d, x4, 7, 0xf57c0faf);
  d = ff(d, a, b, c, x5, 12, 0x4787c62a);
  c = ff(c, d, a, b, x6, 17, 0xa8304613);
  b = ff(b, c, d, a, x7, 22, 0xfd469501);
  a = ff(a, b, c, d, x8, 7, 0x698098d8);
  d = ff(d, a, b, c, x9, 12, 0x8b44f7af);
  c = ff(c, d, a, b, x10, 17, 0xffff5bb1);
  b = ff(b, c, d, a, x11, 22, 0x895cd7be);
  a = ff(a, b, c, d, x12, 7, 0x6b901122);
  d = ff(d, a, b, c, x13, 12, 0xfd987193);
  c = ff(c, d, a, b, x14, 17, 0xa679438e);
  b = ff(b, c, d, a, x15, 22, 0x49b40821);

  a = gg(a, b, c, d, x1, 5, 0xf61e2562);
  d = gg(d, a, b, c, x6, 9, 0xc040b340);
  c = gg(c, d, a, b, x11, 14, 0x265e5a51);
  b = gg(b, c, d, a, x0, 20, 0xe9b6c7aa);
  a = gg(a, b, c, d, x5, 5, 0xd62f105d);
  d = gg(d, a, b, c, x10, 9, 0x02441453);
  c = gg(c, d, a, b, x15, 14, 0xd8a1e681);
  b = gg(b, c, d, a, x4, 20, 0xe7d3fbc8);
  a = gg(a, b, c, d, x9, 5, 0x21e1cde6);
  d = gg(d, a, b, c, x14, 9, 0xc33707d6);
  c = gg(c, d, a, b, x3, 14, 0xf4d50d87);
  b = gg(b, c, d, a, x8, 20, 0x455a14ed);
  a = gg(a, b, c, d, x13, 5, 0xa9e3e905);
  d = gg(d, a, b, c, x2, 9, 0xfcefa3f8);
  c = gg(c, d, a, b, x7, 14, 0x676f02d9);
  b = gg(b, c, d, a, x12, 20, 0x8d2a4c8a);

  a = hh(a, b, c, d, x5, 4, 0xfffa3942);
  d = hh(d, a, b, c, x8, 11, 0x8771f681);
  c = hh(c, d, a, b, x11, 16, 0x6d9d6122);
  b = hh(b, c, d, a, x14, 23, 0xfde5380c);
  a = hh(a, b, c, d, x1, 4, 0xa4beea44);
  d = hh(d, a, b, c, x4, 11, 0x4bdecfa9);
  c = hh(c, d, a, b, x7, 16, 0xf6bb4b60);
  b = hh(b, c, d, a, x10, 23, 0xbebfbc70);
  a = hh(a, b, c, d, x13, 4, 0x289b7ec6);
  d = hh(d, a, b, c, x0, 11, 0xeaa127fa);
  c = hh(c, d, a, b, x3, 16, 0xd4ef3085);
  b = hh(b, c, d, a, x6, 23, 0x04881d05);
  a = hh(a, b, c, d, x9, 4, 0xd9d4d039);
  d = hh(d, a, b, c, x12, 11, 0xe6db99e5);
  c = hh(c, d, a, b, x15, 16, 0x1fa27cf8);
  b = hh(b, c, d, a, x2, 23, 0xc4ac5665);

  a = ii(a, b, c, d, x0, 6, 0xf4292244);
  d = ii(d, a, b, c, x7, 10, 0x432aff97);
  c = ii(c, d, a, b, x14, 15, 0xab9423a7);
  b = ii(b, c, d, a, x5, 21, 0xfc93a039);
  a = ii(a, b, c, d, x12, 6, 0x655b59c3);
  d = ii(d, a, b, c, x3, 10, 0x8f0ccc92);
  c = ii(c, d, a, b, x10, 15, 0xffeff47d);
  b = ii(b, c, d, a, x1, 21, 0x85845dd1);
  a = ii(a, b, c, d, x8, 6, 0x6fa87e4f);
  d = ii(d, a, b, c, x15, 10, 0xfe2ce6e0);
  c = ii(c, d, a, b, x6, 15, 0xa3014314);
  b = ii(b, c, d, a, x13, 21, 0x4e0811a1);
  a = ii(a, b, c, d, x4, 6, 0xf7537e82);
  d = ii(d, a, b, c, x11, 10, 0xbd3af235);
  c = ii(c, d, a, b, x2, 15, 0x2ad7d2bb);
  b = ii(b, c, d, a, x9, 21, 0xeb86d391);

  s0 += a;
  s1 += b;
  s2 += c;
  s3 += d;
}

// Scratch for the final one or two blocks (padding and length, RFC 1321 sections 3.1-3.2).
const tail: usize = memory.data(128, 16);

/** Runs MD5 over `len` bytes at `p`, leaving the digest in the state words s0..s3. */
function digest(p: usize, len: usize): void {
  s0 = 0x67452301;
  s1 = 0xefcdab89;
  s2 = 0x98badcfe;
  s3 = 0x10325476;
  const full = len & ~(<usize>63);
  for (let off: usize = 0; off < full; off += 64) block(p + off);
  const rest = len - full;
  memory.copy(tail, p + full, rest);
  store<u8>(tail + rest, 0x80);
  // The 64-bit bit length goes in the last 8 bytes of the block; if the rest, the 0x80 and
  // the length do not fit in one block (rest >= 56), padding runs into a second one.
  const end: usize = rest < 56 ? 64 : 128;
  memory.fill(tail + rest + 1, 0, end - 8 - rest - 1);
  store<u64>(tail + end - 8, (<u64>len) << 3);
  block(tail);
  if (end == 128) block(tail + 64);
}

/** MD5 of `len` bytes at `p`: writes the 16-byte digest at `out`. */
export function md5(p: usize, len: usize, out: usize): void {
  digest(p, len);
  store<u32>(out, s0, 0);
  store<u32>(out, s1, 4);
  store<u32>(out, s2, 8);
  store<u32>(out, s3, 12);
}

/**
 * The first 4 digest bytes of MD5 over `len` bytes at `p`, as a little-endian u32: the key
 * position libketama and `hashring` use.
 */
export function md5Word(p: usize, len: usize): u32 {
  digest(p, len);
  return s0;
}

