/**
 * Jump consistent hash (Lamping and Veach, "A Fast, Minimal Memory, Consistent Hash
 * Algorithm", 2014, arXiv:1406.2294), computed in WebAssembly.
 */
import { InvalidOptionError } from '../errors.js';
import { checkInt } from '../validate.js';
import { type Key, wasmCore } from '../wasm/index.js';

/** Most buckets {@link jumpHash} accepts (the paper's int32 bucket count). */
export const MAX_JUMP_BUCKETS = 2 ** 31 - 1;

const U64_MAX = (1n << 64n) - 1n;

/**
 * The bucket in [0, buckets) of a key, with no table and no memory: growing from n to n + 1
 * buckets moves only the keys that land in the new bucket (1/(n + 1) of them on average),
 * and every bucket gets an equal share. Buckets are numbers, not names: they can only be
 * added or removed at the end, so jump hash suits shards numbered 0..n-1 (a sharded store),
 * not a set of nodes that fail independently (use {@link HashRing} or a Maglev table there).
 *
 * A bigint key is the paper's 64-bit key, so the answer is the paper's bucket for it. A
 * string or byte key is first hashed with xxHash64 (seed 0) of its UTF-8 bytes, as
 * `xxh64(key)` returns.
 *
 * @example
 * ```ts
 * jumpHash(123456789n, 10);   // the paper's bucket for this 64-bit key
 * jumpHash('user:42', 16);    // jumpHash(xxh64('user:42'), 16)
 * ```
 * @param buckets an integer in [1, 2^31 - 1].
 * @throws {InvalidOptionError} when `buckets` is out of range, or a bigint key is outside
 *   [0, 2^64 - 1].
 * @throws {TypeError} when the key is not a bigint, string or bytes.
 */
export function jumpHash(key: bigint | Key, buckets: number): number {
  checkInt('buckets', buckets, 1, MAX_JUMP_BUCKETS);
  const core = wasmCore();
  if (typeof key === 'bigint') {
    if (key < 0n || key > U64_MAX) throw new InvalidOptionError('key', key, 'must be a 64-bit unsigned integer');
    return core.exports.jumpHash(BigInt.asIntN(64, key), buckets);
  }
  if (typeof key !== 'string' && !(key instanceof Uint8Array)) {
    throw new TypeError(
      `key must be a bigint, string, Buffer or Uint8Array, got ${key === null ? 'null' : typeof key}`,
    );
  }
  const len = core.writeKey(key);
  return core.exports.jumpHashBytes(core.scratchPtr, len, buckets);
}
