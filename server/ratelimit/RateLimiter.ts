/**
 * Rate limiting with token buckets (as nginx's `limit_req` and Envoy's local rate limit
 * do): a bucket per route and client key holds up to `burst` tokens, refills at `rps`
 * tokens a second, and each request takes one. With no token left the request is refused
 * with 429 and `Retry-After`.
 *
 * On the memory store each gateway process keeps its own buckets (MemoryRateLimiter, which
 * answers synchronously); on Redis the buckets are the store's (`store.rateLimits`, through
 * StoreRateLimiter), so every gateway sharing it enforces one limit together.
 */
import type { ResolvedRateLimit } from '../config/GatewayConfig.js';

/**
 * Takes a token from the bucket `key` of a limit. Resolves (or returns, when it can answer
 * at once) 0 when the request may go, else the milliseconds until a token will be there.
 */
export interface RateLimiter {
  take(key: string, limit: ResolvedRateLimit): number | Promise<number>;
  /** Stops timers; the limiter is not used afterwards. */
  close(): void;
}
