/**
 * ringway's public API. This file only re-exports.
 */
export * from './errors.js';
export {
  DEFAULT_BOUNDED_LOAD_FACTOR,
  DEFAULT_RING_OPTIONS,
  HashRing,
  MAX_NODE_ID_LENGTH,
  MAX_POINTS_PER_NODE,
  type ResolvedRingOptions,
  RING_HASHES,
  type RingHash,
  type RingJSON,
  type RingLoads,
  type RingNodeInput,
  type RingNodeOptions,
  type RingOptions,
  resolveRingOptions,
} from './ring/HashRing.js';
export { xxh32, xxh64 } from './ring/hash.js';
export { jumpHash, MAX_JUMP_BUCKETS } from './ring/jumpHash.js';
export {
  DEFAULT_MAGLEV_OPTIONS,
  MAX_MAGLEV_SIZE,
  MAX_MAGLEV_WEIGHT,
  type MaglevJSON,
  type MaglevNodeInput,
  type MaglevOptions,
  MaglevTable,
  type ResolvedMaglevOptions,
  resolveMaglevOptions,
} from './ring/MaglevTable.js';
export type { Key } from './wasm/index.js';
