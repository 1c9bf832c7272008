/**
 * ringway's public API. This file only re-exports.
 */

export {
  ConfigCenter,
  type ConfigEntry,
  type ConfigEvent,
  type ConfigHealth,
  type ConfigNamespaceOption,
  type ConfigVersion,
  type ConfigWatch,
  type ConfigWatchOptions,
  type ConfigWriteOptions,
} from './config/ConfigCenter.js';
export {
  type ConfigOptions,
  DEFAULT_CONFIG_OPTIONS,
  MAX_VALUE_BYTES,
  type ResolvedConfigOptions,
  resolveConfigOptions,
} from './config/ConfigOptions.js';
export type { ConfigChange, ConfigWatchCallback } from './config/ConfigWatcher.js';
export type { JsonValue } from './config/jsonValue.js';
export * from './errors.js';
export { Registration, type RegistrationState } from './registry/Registration.js';
export {
  DEFAULT_REGISTRY_OPTIONS,
  type RegistryOptions,
  type ResolvedRegistryOptions,
  resolveRegistryOptions,
  type SelfPreservationOptions,
} from './registry/RegistryOptions.js';
export {
  REGISTRATION_LIMITS,
  type RegistrationInput,
  type RegistrationPatch,
  type ServiceInstance,
} from './registry/ServiceInstance.js';
export {
  type InstanceQuery,
  type RegistryEvent,
  type RegistryHealth,
  type RegistryWatch,
  ServiceRegistry,
} from './registry/ServiceRegistry.js';
export type { RegistryChange, RegistryWatchCallback } from './registry/ServiceView.js';
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
