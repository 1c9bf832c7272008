/**
 * Token buckets in this process: one lookup and a little arithmetic per request, answered
 * synchronously (the gateway's fast path when its store is in memory). The buckets are the
 * memory store's ({@link TokenBuckets}), by a monotonic clock; full, idle buckets are swept
 * so that keys seen once do not pile up, and the number of buckets is bounded.
 */
import { TokenBuckets } from '../../src/store/memory/TokenBuckets.js';
import type { ResolvedRateLimit } from '../config/GatewayConfig.js';
import type { RateLimiter } from './RateLimiter.js';

/** Options of {@link MemoryRateLimiter}. */
export interface MemoryRateLimiterOptions {
  /** Most buckets kept; the oldest are dropped beyond it (they start full again). @default 100_000 */
  maxBuckets?: number;
  /** Time between sweeps of full buckets, in ms. @default 30_000 */
  sweepIntervalMs?: number;
  /** Monotonic clock in ms. @default performance.now */
  now?: () => number;
}

/** Token buckets kept in this process. */
export class MemoryRateLimiter implements RateLimiter {
  readonly #buckets: TokenBuckets;
  readonly #now: () => number;
  readonly #timer: NodeJS.Timeout;

  constructor(options: MemoryRateLimiterOptions = {}) {
    this.#buckets = new TokenBuckets(options.maxBuckets ?? 100_000);
    this.#now = options.now ?? (() => performance.now());
    this.#timer = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 30_000);
    this.#timer.unref();
  }

  take(key: string, limit: ResolvedRateLimit): number {
    return this.#buckets.take(key, this.#now(), limit.burst, limit.rps, 1);
  }

  /** Drops buckets that have refilled completely (they would start full anyway). */
  sweep(): void {
    this.#buckets.sweep(this.#now());
  }

  /** Buckets held now. */
  get size(): number {
    return this.#buckets.size;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#buckets.clear();
  }
}
