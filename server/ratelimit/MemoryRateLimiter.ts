/**
 * Token buckets in this process: one lookup and a little arithmetic per request, refilled
 * lazily from the elapsed time (no timer per bucket). Full, idle buckets are swept so that
 * keys seen once do not pile up, and the number of buckets is bounded.
 */
import type { ResolvedRateLimit } from '../config/GatewayConfig.js';
import type { RateLimiter } from './RateLimiter.js';

interface Bucket {
  tokens: number;
  /** Clock (ms) of the last refill. */
  at: number;
}

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
  readonly #buckets = new Map<string, Bucket>();
  readonly #limits = new Map<string, ResolvedRateLimit>();
  readonly #max: number;
  readonly #now: () => number;
  readonly #timer: NodeJS.Timeout;

  constructor(options: MemoryRateLimiterOptions = {}) {
    this.#max = options.maxBuckets ?? 100_000;
    this.#now = options.now ?? (() => performance.now());
    this.#timer = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 30_000);
    this.#timer.unref();
  }

  take(key: string, limit: ResolvedRateLimit): number {
    const now = this.#now();
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= this.#max) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
      b = { tokens: limit.burst, at: now };
      this.#buckets.set(key, b);
      this.#limits.set(key, limit);
    } else {
      b.tokens = Math.min(limit.burst, b.tokens + ((now - b.at) * limit.rps) / 1000);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - b.tokens) * 1000) / limit.rps));
  }

  /** Drops buckets that have refilled completely (they would start full anyway). */
  sweep(): void {
    const now = this.#now();
    for (const [key, b] of this.#buckets) {
      const limit = this.#limits.get(key);
      if (limit === undefined || b.tokens + ((now - b.at) * limit.rps) / 1000 >= limit.burst) {
        this.#buckets.delete(key);
        this.#limits.delete(key);
      }
    }
  }

  /** Buckets held now. */
  get size(): number {
    return this.#buckets.size;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#buckets.clear();
    this.#limits.clear();
  }
}
