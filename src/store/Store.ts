/**
 * The store layer: the one interface that locks, the service registry and the config center
 * are written against, with two backends that pass the same contract suite
 * (test/store/contract.ts): `memoryStore()` (in-process, the default) and
 * `redisStore(clientOrUrl)` (standalone Redis, Sentinel or Cluster through ioredis).
 *
 * A {@link Store} is made of one part per concept (`store.locks`, `store.registry`,
 * `store.config`, `store.rateLimits`) plus shared pieces every concept may use: server time, restart detection,
 * a change-notification channel, and `close()`.
 *
 * ## Adding a concept (e.g. the registry) to both backends
 *
 * 1. Write the part's interface in its own file, `src/store/RegistryStorage.ts`, as
 *    `LockStorage.ts` does: every method is one atomic step, returns a promise, and takes
 *    already-validated arguments (validation lives in the concept's own module, e.g.
 *    `src/registry`). Add `readonly registry: RegistryStorage` to {@link Store} below.
 * 2. Memory: `src/store/memory/MemoryRegistryStorage.ts`. Each method does its work
 *    synchronously inside the promise-returning call, so it is atomic by construction.
 *    Use `MemoryContext` (clock, change feed, timer bookkeeping) as `MemoryLockStorage` does,
 *    and construct the part in `MemoryStore`.
 * 3. Redis: Lua scripts as named constants with a comment on each line, in
 *    `src/store/redis/registryScripts.ts` (see `lockScripts.ts`); a
 *    `src/store/redis/RedisRegistryStorage.ts` that calls them through
 *    `RedisContext.run(...)` (one round trip each; bounded in time; connection failures
 *    become `StoreUnavailableError`). Register the scripts in `RedisStore`'s `SCRIPTS`.
 *    Every key one script touches must carry the same hash tag, built by
 *    `entityKey(prefix, 'registry', serviceName, part)` from `keys.ts`, so scripts never
 *    fail with CROSSSLOT on a Redis Cluster. Scripts can notify watchers with
 *    `redis.call('PUBLISH', channel, message)` using `ctx.channel(name)` as the channel:
 *    `store.changes.subscribe(name, ...)` receives it in every process.
 * 4. Add the part's cases to the contract suite (test/store/contract.ts): the same tests
 *    then run against memory, a real redis-server and (when it can be formed) a cluster.
 *
 * Parts that need to react to a Redis restart (which loses every key when the server keeps
 * nothing on disk) subscribe with {@link Store.onRestart}.
 */
import type { ConfigStorage } from './ConfigStorage.js';
import type { LockStorage } from './LockStorage.js';
import type { RateLimitStorage } from './RateLimitStorage.js';
import type { RegistryStorage } from './RegistryStorage.js';

/** Which backend a store is. */
export type StoreKind = 'memory' | 'redis';

/** Told when the store's server restarted (its run id changed) and may have lost data. */
export interface RestartEvent {
  /** Run id of the server before the restart ('' if it was never known). */
  readonly previousRunId: string;
  /** Run id of the server now. */
  readonly runId: string;
  /** The connection the restart was seen on (e.g. `127.0.0.1:6379`). */
  readonly server: string;
}

/** Stops a subscription; calling it twice is harmless. */
export type Unsubscribe = () => Promise<void>;

/**
 * A publish/subscribe channel shared by every process using the same store. Messages are
 * best effort (at most once, no history): watchers must re-read state after subscribing and
 * after a reconnect, as the registry's index does.
 */
export interface ChangeFeed {
  /**
   * Sends `message` to every current subscriber of `channel`, in every process.
   * @throws {StoreUnavailableError} when the store cannot be reached.
   */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Calls `listener` for every message on `channel` until the returned function is called.
   * Resolves once the subscription is active.
   * @throws {StoreUnavailableError} when the store cannot be reached.
   */
  subscribe(channel: string, listener: (message: string) => void): Promise<Unsubscribe>;
}

/**
 * The interface locks, registry and config are written against. Obtain one from
 * `memoryStore()` or `redisStore(clientOrUrl)`.
 */
export interface Store {
  /** The backend. */
  readonly kind: StoreKind;
  /** Lock leases, fencing tokens and fair queues. */
  readonly locks: LockStorage;
  /** Service instances with TTL leases, per-service indexes and change logs. */
  readonly registry: RegistryStorage;
  /** Namespaced, versioned config keys with history and a per-namespace revision. */
  readonly config: ConfigStorage;
  /** Token buckets shared by every process using the store (e.g. the gateway's rate limits). */
  readonly rateLimits: RateLimitStorage;
  /** Publish/subscribe notifications between processes. */
  readonly changes: ChangeFeed;
  /**
   * The store's clock, in milliseconds since the epoch: the server's `TIME` for Redis, so
   * that every process judges expiry by the same clock.
   * @throws {StoreUnavailableError} when the store cannot be reached.
   */
  time(): Promise<number>;
  /**
   * Calls `listener` whenever the server is seen to have restarted (Redis: a new run id
   * after a reconnect). The memory store never restarts. Returns a function that removes
   * the listener.
   */
  onRestart(listener: (event: RestartEvent) => void): () => void;
  /** True once {@link Store.close} was called. */
  readonly closed: boolean;
  /**
   * Releases timers and the connections the store opened itself. A client passed in by the
   * caller is left open. Calling it twice is harmless.
   */
  close(): Promise<void>;
}

/** What a lock backend must offer: a full {@link Store}, or a Redlock quorum of them. */
export type LockBackend = Pick<Store, 'locks' | 'onRestart'>;
