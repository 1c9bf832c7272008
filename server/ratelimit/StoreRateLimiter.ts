/**
 * Token buckets in the gateway's store (`store.rateLimits`), shared by every gateway on the
 * same Redis: one atomic step per request, by the store's clock, so gateways with skewed
 * clocks still agree.
 *
 * When the store cannot be reached the limiter lets requests through (fails open) and counts
 * the failure: a rate limit must not turn a Redis outage into a gateway outage.
 */
import { createHash } from 'node:crypto';
import type { RateLimitStorage } from '../../src/store/RateLimitStorage.js';
import type { ResolvedRateLimit } from '../config/GatewayConfig.js';
import type { RateLimiter } from './RateLimiter.js';

/** Keys longer than this (a long client header) are replaced by a digest the store accepts. */
const MAX_KEY_LENGTH = 512;

/** Token buckets in a store. */
export class StoreRateLimiter implements RateLimiter {
  readonly #storage: RateLimitStorage;
  /** Calls that failed (store unreachable) and were let through. */
  failures = 0;

  constructor(storage: RateLimitStorage) {
    this.#storage = storage;
  }

  async take(key: string, limit: ResolvedRateLimit): Promise<number> {
    const k = key.length > MAX_KEY_LENGTH ? `#sha1:${createHash('sha1').update(key).digest('hex')}` : key;
    try {
      const outcome = await this.#storage.take(k, { capacity: limit.burst, refillPerSec: limit.rps });
      return outcome.retryAfterMs;
    } catch {
      this.failures++;
      return 0;
    }
  }

  close(): void {}
}
