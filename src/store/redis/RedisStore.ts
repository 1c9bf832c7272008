/**
 * `redisStore(clientOrUrl)`: the store shared by every process that points at the same Redis:
 * a standalone server, a Sentinel-managed master (pass an ioredis client configured with
 * `sentinels`), or a Redis Cluster (pass an ioredis `Cluster`). Multi-key steps are Lua
 * scripts, one round trip each; keys of one entity share a hash tag.
 */
import type { Redis, RedisOptions } from 'ioredis';
import { InvalidOptionError } from '../../errors.js';
import { checkInt, checkObject } from '../../validate.js';
import { checkPrefix } from '../keys.js';
import { DEFAULT_FENCE_RETENTION_MS } from '../LockStorage.js';
import type { RestartEvent, Store } from '../Store.js';
import { loadIoredis } from './loadIoredis.js';
import type { ScriptDefinition } from './lockScripts.js';
import { RedisChangeFeed } from './RedisChangeFeed.js';
import { CONFIG_SCRIPTS, RedisConfigStorage } from './RedisConfigStorage.js';
import { type RedisClient, RedisContext, timeBound } from './RedisContext.js';
import { LOCK_SCRIPTS, RedisLockStorage } from './RedisLockStorage.js';
import { RATE_LIMIT_SCRIPTS, RedisRateLimitStorage } from './RedisRateLimitStorage.js';
import { REGISTRY_SCRIPTS, RedisRegistryStorage } from './RedisRegistryStorage.js';
import { RestartWatcher } from './RestartWatcher.js';

/**
 * ioredis, loaded on the first store made from a URL rather than when ringway is imported, and
 * loaded so that it does not slow every string method in the process (see loadIoredis.ts). A
 * process on the memory store never loads it.
 */
let RedisClass: typeof Redis | undefined;
function loadRedis(): typeof Redis {
  RedisClass ??= loadIoredis().Redis;
  return RedisClass;
}

/** Options of {@link redisStore}. */
export interface RedisStoreOptions {
  /**
   * Prepended to every key and channel, so that several apps can share one Redis. No braces
   * (they would take over the Cluster hash tag).
   * @default 'ringway:'
   */
  prefix?: string;
  /**
   * A command without a reply in this time fails with `StoreUnavailableError` instead of
   * waiting for ioredis to reconnect.
   * @default 2_000
   */
  commandTimeoutMs?: number;
  /**
   * How long a resource's fencing counter is kept after its last grant.
   * @default 86_400_000
   */
  fenceRetentionMs?: number;
  /**
   * ioredis options for the client the store creates when given a URL (ignored when given a
   * client). The store sets `maxRetriesPerRequest: 1` unless these say otherwise.
   * @default {}
   */
  redisOptions?: RedisOptions;
}

/** Defaults of {@link RedisStoreOptions}. */
export const DEFAULT_REDIS_STORE_OPTIONS = Object.freeze({
  prefix: 'ringway:',
  commandTimeoutMs: 2_000,
  fenceRetentionMs: DEFAULT_FENCE_RETENTION_MS,
});

/** Every script of every part, registered on the client once. Parts add theirs here. */
const SCRIPTS: Readonly<Record<string, ScriptDefinition>> = Object.freeze({
  ...LOCK_SCRIPTS,
  ...REGISTRY_SCRIPTS,
  ...CONFIG_SCRIPTS,
  ...RATE_LIMIT_SCRIPTS,
});

/** A store in Redis. */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly locks: RedisLockStorage;
  readonly registry: RedisRegistryStorage;
  readonly config: RedisConfigStorage;
  readonly rateLimits: RedisRateLimitStorage;
  readonly changes: RedisChangeFeed;
  /** The ioredis client (standalone, Sentinel or Cluster). */
  readonly client: RedisClient;
  readonly #ctx: RedisContext;
  readonly #owned: boolean;
  readonly #restarts: RestartWatcher;
  #closed = false;

  /**
   * Prefer {@link redisStore}.
   * @throws {InvalidOptionError} for a bad URL or option.
   * @throws {TypeError} when `clientOrUrl` is neither a string nor an ioredis client.
   */
  constructor(clientOrUrl: RedisClient | string, options: RedisStoreOptions = {}) {
    const opts = checkObject('options', options) as RedisStoreOptions;
    const prefix = checkPrefix('prefix', opts.prefix ?? DEFAULT_REDIS_STORE_OPTIONS.prefix);
    const commandTimeoutMs = checkInt(
      'commandTimeoutMs',
      opts.commandTimeoutMs ?? DEFAULT_REDIS_STORE_OPTIONS.commandTimeoutMs,
      1,
      600_000,
    );
    const fenceRetentionMs = checkInt(
      'fenceRetentionMs',
      opts.fenceRetentionMs ?? DEFAULT_REDIS_STORE_OPTIONS.fenceRetentionMs,
      1,
      Number.MAX_SAFE_INTEGER,
    );
    if (typeof clientOrUrl === 'string') {
      if (!/^rediss?:\/\//.test(clientOrUrl)) {
        throw new InvalidOptionError('url', clientOrUrl, 'must start with redis:// or rediss://');
      }
      // The store bounds each command itself (RedisContext.bounded), more cheaply than
      // ioredis' per-command `commandTimeout`.
      // No resend of commands a dropped connection left unanswered: the store's scripts are
      // not idempotent (a resent write would apply twice, a CAS that succeeded would come
      // back a conflict). Such a command fails with ERR_STORE_UNAVAILABLE: outcome unknown.
      const client = new (loadRedis())(clientOrUrl, {
        maxRetriesPerRequest: 1,
        autoResendUnfulfilledCommands: false,
        ...checkObject('redisOptions', opts.redisOptions),
      });
      // Failures surface through commands as StoreUnavailableError; without a listener
      // ioredis would also log every connection error.
      client.on('error', () => {});
      this.client = client;
      this.#owned = true;
    } else if (
      typeof clientOrUrl === 'object' &&
      clientOrUrl !== null &&
      typeof (clientOrUrl as { defineCommand?: unknown }).defineCommand === 'function'
    ) {
      this.client = clientOrUrl;
      this.#owned = false;
    } else {
      throw new TypeError('redisStore() takes a redis:// URL or an ioredis Redis or Cluster client');
    }
    RedisContext.defineScripts(this.client, SCRIPTS);
    this.#ctx = new RedisContext(this.client, prefix, commandTimeoutMs);
    this.changes = new RedisChangeFeed(this.#ctx);
    this.locks = new RedisLockStorage(this.#ctx, this.changes, fenceRetentionMs);
    this.registry = new RedisRegistryStorage(this.#ctx, this.changes);
    this.config = new RedisConfigStorage(this.#ctx, this.changes);
    this.rateLimits = new RedisRateLimitStorage(this.#ctx);
    this.#restarts = new RestartWatcher(this.client, commandTimeoutMs);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The key prefix. */
  get prefix(): string {
    return this.#ctx.prefix;
  }

  async time(): Promise<number> {
    const [seconds, micros] = await this.#ctx.bounded(() => this.client.time());
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  onRestart(listener: (event: RestartEvent) => void): () => void {
    return this.#restarts.on(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#ctx.close();
    this.#restarts.close();
    await this.changes.close();
    if (this.#owned) await quitOrDrop(this.client, this.#ctx.commandTimeoutMs);
  }
}

/**
 * QUIT, so that commands sent before it are answered first; but a server that stopped
 * answering (paused, partitioned away) would hold it for ever, and with it the exit of the
 * process that closes: past `timeoutMs` (or on a failure) the connection is dropped.
 */
async function quitOrDrop(client: RedisClient, timeoutMs: number): Promise<void> {
  await timeBound(client.quit(), timeoutMs).catch(() => client.disconnect());
}

/**
 * Creates a store in Redis from a URL (`redis://host:port/db`) or an ioredis client:
 * `new Redis(...)` for a standalone server or a Sentinel-managed master, `new Cluster(...)`
 * for Redis Cluster. A client passed in stays the caller's to close.
 * @throws {InvalidOptionError} for a bad URL or option, naming it.
 * @throws {TypeError} when `clientOrUrl` is neither a string nor an ioredis client.
 * @example
 * ```ts
 * const store = redisStore(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
 * const locks = new LockManager({ store });
 * ```
 */
export function redisStore(clientOrUrl: RedisClient | string, options: RedisStoreOptions = {}): RedisStore {
  return new RedisStore(clientOrUrl, options);
}
