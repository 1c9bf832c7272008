/**
 * `memoryStore()`: the default store, in this process only. Every operation is atomic by
 * construction (it runs synchronously inside one call); leases expire by the store clock;
 * expired entries are swept periodically so abandoned names do not pile up.
 */
import { InvalidOptionError } from '../../errors.js';
import { checkInt, checkObject } from '../../validate.js';
import { DEFAULT_FENCE_RETENTION_MS } from '../LockStorage.js';
import type { RestartEvent, Store } from '../Store.js';
import { MemoryChangeFeed } from './MemoryChangeFeed.js';
import { MemoryConfigStorage } from './MemoryConfigStorage.js';
import { closedError, type MemoryContext, monotonicNow } from './MemoryContext.js';
import { MemoryLockStorage } from './MemoryLockStorage.js';
import { MemoryRateLimitStorage } from './MemoryRateLimitStorage.js';
import { MemoryRegistryStorage } from './MemoryRegistryStorage.js';

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /**
   * The store clock in ms since the epoch. Tests may pass a fake one.
   * @default the process' monotonic clock, anchored at `performance.timeOrigin`
   */
  clock?: () => number;
  /**
   * How often expired entries are swept, in ms (the sweep timer does not keep the process alive).
   * @default 5_000
   */
  sweepIntervalMs?: number;
  /**
   * How long a resource's fencing counter is kept after its last grant.
   * @default 86_400_000
   */
  fenceRetentionMs?: number;
}

/** Defaults of {@link MemoryStoreOptions}. */
export const DEFAULT_MEMORY_STORE_OPTIONS = Object.freeze({
  sweepIntervalMs: 5_000,
  fenceRetentionMs: DEFAULT_FENCE_RETENTION_MS,
});

/** A store that lives in this process. */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  readonly locks: MemoryLockStorage;
  readonly registry: MemoryRegistryStorage;
  readonly config: MemoryConfigStorage;
  readonly rateLimits: MemoryRateLimitStorage;
  readonly changes: MemoryChangeFeed;
  readonly #clock: () => number;
  readonly #sweep: NodeJS.Timeout;
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    const opts = checkObject('options', options) as MemoryStoreOptions;
    if (opts.clock !== undefined && typeof opts.clock !== 'function') {
      throw new InvalidOptionError('clock', opts.clock, 'must be a function returning ms since the epoch');
    }
    const sweepIntervalMs = checkInt(
      'sweepIntervalMs',
      opts.sweepIntervalMs ?? DEFAULT_MEMORY_STORE_OPTIONS.sweepIntervalMs,
      1,
      2_147_483_647,
    );
    const fenceRetentionMs = checkInt(
      'fenceRetentionMs',
      opts.fenceRetentionMs ?? DEFAULT_MEMORY_STORE_OPTIONS.fenceRetentionMs,
      1,
      Number.MAX_SAFE_INTEGER,
    );
    this.#clock = opts.clock ?? monotonicNow;
    const assertOpen = () => {
      if (this.#closed) throw closedError();
    };
    this.changes = new MemoryChangeFeed(assertOpen);
    const ctx: MemoryContext = { now: this.#clock, feed: this.changes, assertOpen };
    this.locks = new MemoryLockStorage(ctx, fenceRetentionMs);
    this.registry = new MemoryRegistryStorage(ctx);
    this.config = new MemoryConfigStorage(ctx);
    this.rateLimits = new MemoryRateLimitStorage(ctx);
    this.#sweep = setInterval(() => {
      this.locks.sweep();
      this.rateLimits.sweep();
    }, sweepIntervalMs).unref();
  }

  get closed(): boolean {
    return this.#closed;
  }

  async time(): Promise<number> {
    if (this.#closed) throw closedError();
    return Math.floor(this.#clock());
  }

  onRestart(_listener: (event: RestartEvent) => void): () => void {
    // A memory store lives and dies with its process: it never restarts under its users.
    return () => {};
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    this.changes.clear();
  }
}

/**
 * Creates an in-process store: the default backend, for one process.
 * @throws {InvalidOptionError} for a bad option, naming it.
 * @example
 * ```ts
 * const store = memoryStore();
 * const locks = new LockManager({ store });
 * ```
 */
export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  return new MemoryStore(options);
}
