/**
 * Token buckets in Redis, shared by every gateway on the same Redis: one Lua script per
 * request refills and takes atomically, by the Redis server's clock (`TIME`), so gateways
 * with skewed clocks still agree. Each bucket is one hash with a hash tag of its own (safe on
 * Redis Cluster) that expires once it would be full again.
 *
 * When Redis cannot be reached the limiter lets requests through (fails open) and counts
 * the failure: a rate limit must not turn a Redis outage into a gateway outage.
 */
import { entityKey } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/redis/RedisContext.js';
import type { ResolvedRateLimit } from '../config/GatewayConfig.js';
import type { RateLimiter } from './RateLimiter.js';

/**
 * KEYS[1]: the bucket (a hash: `tokens`, `at` in microseconds of the server clock).
 * ARGV[1]: tokens per second; ARGV[2]: bucket size.
 * Returns 0 when a token was taken, else the milliseconds until one will be there.
 */
export const TAKE_TOKEN_SCRIPT = `
local t = redis.call('TIME')                                   -- server clock: one clock for all gateways
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])          -- microseconds
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then tokens = burst; at = now end -- a new bucket starts full
if now > at then tokens = math.min(burst, tokens + (now - at) * rate / 1000000) end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000) -- gone once it would be full
return wait
`;

type WithTakeToken = RedisClient & {
  ringwayTakeToken(key: string, rate: number, burst: number): Promise<number>;
};

/** Token buckets in Redis. */
export class RedisRateLimiter implements RateLimiter {
  readonly #client: WithTakeToken;
  readonly #prefix: string;
  /** Calls that failed (Redis unreachable) and were let through. */
  failures = 0;

  constructor(client: RedisClient, prefix: string) {
    if (typeof (client as unknown as Partial<WithTakeToken>).ringwayTakeToken !== 'function') {
      client.defineCommand('ringwayTakeToken', { numberOfKeys: 1, lua: TAKE_TOKEN_SCRIPT });
    }
    this.#client = client as unknown as WithTakeToken;
    this.#prefix = prefix;
  }

  async take(key: string, limit: ResolvedRateLimit): Promise<number> {
    try {
      const wait = await this.#client.ringwayTakeToken(
        entityKey(this.#prefix, 'ratelimit', key),
        limit.rps,
        limit.burst,
      );
      return Number(wait);
    } catch {
      this.failures++;
      return 0;
    }
  }

  close(): void {}
}
