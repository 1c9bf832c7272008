/**
 * The WASM hash functions, exposed for users who need the same hashes as the ring
 * (sharding keys elsewhere, checking a placement by hand).
 */
import { type Key, wasmCore } from '../wasm/index.js';

/**
 * xxHash64 of a key's UTF-8 bytes (or of the bytes as given), as an unsigned bigint.
 * @throws {TypeError} when the key is neither a string nor bytes.
 */
export function xxh64(key: Key, seed: bigint = 0n): bigint {
  const core = wasmCore();
  const len = core.writeKey(key);
  return BigInt.asUintN(64, core.exports.xxh64(core.scratchPtr, len, BigInt.asIntN(64, seed)));
}

/**
 * xxHash32 of a key's UTF-8 bytes (or of the bytes as given), as an unsigned number.
 * @throws {TypeError} when the key is neither a string nor bytes.
 */
export function xxh32(key: Key, seed = 0): number {
  const core = wasmCore();
  const len = core.writeKey(key);
  return core.exports.xxh32(core.scratchPtr, len, seed | 0) >>> 0;
}
