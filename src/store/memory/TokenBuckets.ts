/**
 * Token buckets held in this process, refilled lazily from the elapsed time (no timer per
 * bucket), with a bounded count (the oldest bucket is dropped beyond it and starts full
 * again) and a sweep of buckets that have refilled completely. Shared by the memory store's
 * rate-limit part and the gateway's in-process limiter, which keeps a synchronous answer.
 * Callers pass validated limits and their own clock (ms).
 */
import { MAX_RETRY_AFTER_MS, TOKEN_EPSILON } from '../RateLimitStorage.js';

interface Bucket {
  tokens: number;
  /** Clock (ms) of the last refill. */
  at: number;
  capacity: number;
  rate: number;
}

/** A bounded table of token buckets. */
export class TokenBuckets {
  readonly #buckets = new Map<string, Bucket>();
  readonly #max: number;
  /** Tokens left in the bucket of the last {@link TokenBuckets.take}. */
  lastTokens = 0;

  constructor(maxBuckets: number) {
    this.#max = maxBuckets;
  }

  /**
   * Refills bucket `key` to `now` and takes `cost` tokens if they are there. Returns 0 when
   * taken, else the ms (at least 1) until they will be.
   */
  take(key: string, now: number, capacity: number, rate: number, cost: number): number {
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= this.#max) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
      b = { tokens: capacity, at: now, capacity, rate };
      this.#buckets.set(key, b);
    } else {
      // A clock that steps back refills nothing (and does not move the refill mark back).
      if (now > b.at) {
        b.tokens += ((now - b.at) * rate) / 1000;
        b.at = now;
      }
      if (b.tokens > capacity) b.tokens = capacity;
      b.capacity = capacity;
      b.rate = rate;
    }
    if (b.tokens >= cost - TOKEN_EPSILON) {
      // A take short by less than TOKEN_EPSILON goes through and owes the shortfall (the
      // bucket dips below 0 by at most that much): shortfalls never add up to free tokens.
      b.tokens -= cost;
      this.lastTokens = Math.max(0, b.tokens);
      return 0;
    }
    this.lastTokens = Math.max(0, b.tokens);
    return Math.min(MAX_RETRY_AFTER_MS, Math.max(1, Math.ceil(((cost - TOKEN_EPSILON - b.tokens) * 1000) / rate)));
  }

  /** Drops buckets that have refilled completely by `now` (they would start full anyway). */
  sweep(now: number): void {
    for (const [key, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) * b.rate) / 1000 >= b.capacity) this.#buckets.delete(key);
    }
  }

  /** Buckets held now. */
  get size(): number {
    return this.#buckets.size;
  }

  clear(): void {
    this.#buckets.clear();
  }
}
