/**
 * Options of {@link ServiceRegistry}: defaults, and `resolveRegistryOptions`, which merges,
 * validates (naming the field and the bad value) and freezes them.
 */
import { InvalidOptionError } from '../errors.js';
import type { Store } from '../store/Store.js';
import { checkInt, checkNumber, checkObject } from '../validate.js';

/** When the registry warns that a service is losing instances too fast (Eureka's self-preservation). */
export interface SelfPreservationOptions {
  /**
   * The share of a service's instances that must expire within `windowMs` for the warning:
   * more than this, of the instances live at the start of the window.
   * @default 0.5
   */
  threshold?: number;
  /**
   * The window over which expiries count as "at once", in ms.
   * @default the registry's ttlMs
   */
  windowMs?: number;
  /**
   * Services with fewer instances (live + just expired) never warn.
   * @default 3
   */
  minInstances?: number;
}

/** Options of {@link ServiceRegistry}. */
export interface RegistryOptions {
  /** The store shared by every process of the fleet: `memoryStore()` or `redisStore(url)`. */
  store: Store;
  /**
   * Lease of a registration: an instance that stops heartbeating disappears this long after
   * its last heartbeat (plus at most one sweep interval). Heartbeats go every ttlMs / 3.
   * A registration may set its own.
   * @default 15_000
   */
  ttlMs?: number;
  /**
   * How often this registry sweeps and re-reads each service it caches or watches: the bound
   * on how late an expiry is noticed, and on how long a missed notification stays missed.
   * @default 1_000
   */
  sweepIntervalMs?: number;
  /**
   * Changes kept in each service's change log, from which watchers catch up; a watcher that
   * missed more reads a snapshot instead.
   * @default 256
   */
  logLimit?: number;
  /**
   * How long a removed registration is remembered, so that a stale copy of it (a paused
   * process that resumes) cannot come back: measured from the registration's start.
   * @default 86_400_000 (one day)
   */
  tombstoneMs?: number;
  /** Self-preservation warning (see {@link SelfPreservationOptions}). */
  selfPreservation?: SelfPreservationOptions;
  /**
   * The local copy of a service that no watch uses is dropped (and stops syncing) once it
   * has not been looked up (`instances()`) for this long; the next lookup reads the service
   * again, one store round trip.
   * @default 60_000
   */
  idleViewMs?: number;
  /**
   * At most this many services are cached without a watch: past it, the one looked up
   * least recently is dropped. Watched services (every service a gateway routes to) do not
   * count and are never dropped.
   * @default 1_000
   */
  maxIdleViews?: number;
}

/** {@link RegistryOptions} with every default applied. */
export interface ResolvedRegistryOptions {
  readonly store: Store;
  readonly ttlMs: number;
  readonly sweepIntervalMs: number;
  readonly logLimit: number;
  readonly tombstoneMs: number;
  readonly selfPreservation: Readonly<Required<SelfPreservationOptions>>;
  readonly idleViewMs: number;
  readonly maxIdleViews: number;
}

/** Defaults of {@link RegistryOptions}. */
export const DEFAULT_REGISTRY_OPTIONS = Object.freeze({
  ttlMs: 15_000,
  sweepIntervalMs: 1_000,
  logLimit: 256,
  tombstoneMs: 86_400_000,
  selfPreservation: Object.freeze({ threshold: 0.5, minInstances: 3 }),
  idleViewMs: 60_000,
  maxIdleViews: 1_000,
});

/** Smallest lease accepted (heartbeats every ttl / 3). */
export const MIN_TTL_MS = 100;
/** Largest lease accepted (one day). */
export const MAX_TTL_MS = 86_400_000;

/**
 * Merges `options` with {@link DEFAULT_REGISTRY_OPTIONS}, checks every field and freezes
 * the result.
 * @throws {InvalidOptionError} naming the field and the bad value.
 */
export function resolveRegistryOptions(options: RegistryOptions): ResolvedRegistryOptions {
  const opts = checkObject('options', options) as Partial<RegistryOptions>;
  const store = opts.store;
  if (
    typeof store !== 'object' ||
    store === null ||
    typeof (store as Partial<Store>).registry !== 'object' ||
    typeof (store as Partial<Store>).time !== 'function'
  ) {
    throw new InvalidOptionError('store', store, 'must be a store from memoryStore() or redisStore()');
  }
  const ttlMs = checkInt('ttlMs', opts.ttlMs ?? DEFAULT_REGISTRY_OPTIONS.ttlMs, MIN_TTL_MS, MAX_TTL_MS);
  const sp = checkObject('selfPreservation', opts.selfPreservation);
  return Object.freeze({
    store,
    ttlMs,
    sweepIntervalMs: checkInt(
      'sweepIntervalMs',
      opts.sweepIntervalMs ?? DEFAULT_REGISTRY_OPTIONS.sweepIntervalMs,
      10,
      3_600_000,
    ),
    logLimit: checkInt('logLimit', opts.logLimit ?? DEFAULT_REGISTRY_OPTIONS.logLimit, 1, 100_000),
    tombstoneMs: checkInt('tombstoneMs', opts.tombstoneMs ?? DEFAULT_REGISTRY_OPTIONS.tombstoneMs, 1, 365 * 86_400_000),
    selfPreservation: Object.freeze({
      threshold: checkNumber(
        'selfPreservation.threshold',
        sp.threshold ?? DEFAULT_REGISTRY_OPTIONS.selfPreservation.threshold,
        0,
        1,
        true,
      ),
      windowMs: checkInt('selfPreservation.windowMs', sp.windowMs ?? ttlMs, 1, MAX_TTL_MS),
      minInstances: checkInt(
        'selfPreservation.minInstances',
        sp.minInstances ?? DEFAULT_REGISTRY_OPTIONS.selfPreservation.minInstances,
        1,
        1_000_000,
      ),
    }),
    idleViewMs: checkInt('idleViewMs', opts.idleViewMs ?? DEFAULT_REGISTRY_OPTIONS.idleViewMs, 1, MAX_TTL_MS),
    maxIdleViews: checkInt('maxIdleViews', opts.maxIdleViews ?? DEFAULT_REGISTRY_OPTIONS.maxIdleViews, 1, 1_000_000),
  });
}
