/**
 * ringway's public API. This file only re-exports.
 */

export {
  type AcquireContext,
  Balancer,
  type BalancerEvents,
  type BalancerStatus,
  type BreakerEvent,
  type EjectedEvent,
  type EndpointEvent,
  type EndpointStatus,
  type PanicEvent,
  type UnhealthyEvent,
} from './balancer/Balancer.js';
export {
  type BreakerListener,
  type BreakerState,
  type BreakerTicket,
  CircuitBreaker,
  type CircuitBreakerOptions,
  CLOSED_TICKET,
  DEFAULT_CIRCUIT_BREAKER_OPTIONS,
  REFUSED_TICKET,
  type ResolvedCircuitBreakerOptions,
  resolveCircuitBreakerOptions,
} from './balancer/CircuitBreaker.js';
export { createBalancer } from './balancer/createBalancer.js';
export { type Endpoint, type EndpointInput, MAX_ENDPOINT_WEIGHT } from './balancer/Endpoint.js';
export {
  DEFAULT_HEALTH_CHECK_OPTIONS,
  type ExpectedStatus,
  HEALTH_CHECK_TYPES,
  HealthChecker,
  type HealthCheckOptions,
  type HealthCheckType,
  type HealthListener,
  type HealthStatus,
  type ResolvedHealthCheckOptions,
  resolveHealthCheckOptions,
} from './balancer/HealthChecker.js';
export type { Lease, ReleaseResult } from './balancer/Lease.js';
export {
  DEFAULT_OUTLIER_DETECTION_OPTIONS,
  type OutlierDetectionOptions,
  type ResolvedOutlierDetectionOptions,
  resolveOutlierDetectionOptions,
} from './balancer/OutlierDetector.js';
export {
  type BalancerOptions,
  DEFAULT_BALANCER_OPTIONS,
  type ResolvedBalancerOptions,
  resolveBalancerOptions,
} from './balancer/options.js';
export {
  DEFAULT_RETRY_BUDGET_OPTIONS,
  type ResolvedRetryBudgetOptions,
  RetryBudget,
  type RetryBudgetOptions,
  resolveRetryBudgetOptions,
} from './balancer/RetryBudget.js';
export { DEFAULT_MAGLEV_STRATEGY_OPTIONS, type MaglevStrategyOptions } from './balancer/strategies/Maglev.js';
export { DEFAULT_EWMA_OPTIONS, type EwmaOptions } from './balancer/strategies/PeakEwma.js';
export { DEFAULT_RING_HASH_OPTIONS, type RingHashOptions } from './balancer/strategies/RingHash.js';
export { BALANCER_STRATEGIES, type StrategyName } from './balancer/strategies/Strategy.js';
export {
  ConfigCenter,
  type ConfigEntry,
  type ConfigEvent,
  type ConfigHealth,
  type ConfigNamespaceOption,
  type ConfigSnapshot,
  type ConfigSnapshotOptions,
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
export { Lock } from './lock/Lock.js';
export { LockManager } from './lock/LockManager.js';
export {
  type AcquireOptions,
  DEFAULT_LOCK_MANAGER_OPTIONS,
  type LockManagerOptions,
  MAX_LOCK_NAME_LENGTH,
  MIN_TTL_MS,
  type ResolvedLockManagerOptions,
  resolveLockManagerOptions,
  type WithLockOptions,
} from './lock/options.js';
export { type RedlockMember, type RedlockOptions, RedlockStore, redlockStore } from './lock/RedlockStore.js';
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
  MAX_RING_POINTS,
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
export {
  type AcquireOutcome,
  type AcquireRequest,
  DEFAULT_FENCE_RETENTION_MS,
  type LockState,
  type LockStorage,
  type LockStorageOptions,
  type ReleaseSubscription,
} from './store/LockStorage.js';
export {
  DEFAULT_MEMORY_STORE_OPTIONS,
  MemoryStore,
  type MemoryStoreOptions,
  memoryStore,
} from './store/memory/MemoryStore.js';
export {
  checkRateLimitTake,
  MAX_RATE_LIMIT_CAPACITY,
  MAX_RETRY_AFTER_MS,
  type RateLimitOutcome,
  type RateLimitRequest,
  type RateLimitStorage,
  type ResolvedRateLimitRequest,
  TOKEN_EPSILON,
} from './store/RateLimitStorage.js';
export type { RedisClient } from './store/redis/RedisContext.js';
export {
  DEFAULT_REDIS_STORE_OPTIONS,
  RedisStore,
  type RedisStoreOptions,
  redisStore,
} from './store/redis/RedisStore.js';
export type { ChangeFeed, LockBackend, RestartEvent, Store, StoreKind, Unsubscribe } from './store/Store.js';
export type { Key } from './wasm/index.js';
