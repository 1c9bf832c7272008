/**
 * ringway's public API. This file only re-exports.
 */
export * from './errors.js';
export {
  DEFAULT_RING_OPTIONS,
  HashRing,
  MAX_NODE_ID_LENGTH,
  MAX_POINTS_PER_NODE,
  type ResolvedRingOptions,
  RING_HASHES,
  type RingHash,
  type RingJSON,
  type RingNodeInput,
  type RingNodeOptions,
  type RingOptions,
  resolveRingOptions,
} from './ring/HashRing.js';
export { xxh32, xxh64 } from './ring/hash.js';
export type { Key } from './wasm/index.js';
