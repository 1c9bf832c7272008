/**
 * The memory store's token buckets: one {@link TokenBuckets} table by the store clock,
 * swept with the store's other expired entries.
 */
import {
  checkRateLimitTake,
  type RateLimitOutcome,
  type RateLimitRequest,
  type RateLimitStorage,
} from '../RateLimitStorage.js';
import type { MemoryContext } from './MemoryContext.js';
import { TokenBuckets } from './TokenBuckets.js';

/** Most buckets a memory store keeps; the oldest are dropped beyond it (they start full again). */
export const MEMORY_MAX_BUCKETS = 100_000;

/** Token buckets in a memory store. */
export class MemoryRateLimitStorage implements RateLimitStorage {
  readonly #ctx: MemoryContext;
  readonly #buckets = new TokenBuckets(MEMORY_MAX_BUCKETS);

  constructor(ctx: MemoryContext) {
    this.#ctx = ctx;
  }

  async take(key: string, request: RateLimitRequest): Promise<RateLimitOutcome> {
    const r = checkRateLimitTake(key, request);
    this.#ctx.assertOpen();
    const wait = this.#buckets.take(key, this.#ctx.now(), r.capacity, r.refillPerSec, r.cost);
    return { allowed: wait === 0, remaining: Math.floor(this.#buckets.lastTokens), retryAfterMs: wait };
  }

  /** Drops buckets that have refilled completely. */
  sweep(): void {
    this.#buckets.sweep(this.#ctx.now());
  }

  /** Buckets held now. */
  get size(): number {
    return this.#buckets.size;
  }
}
