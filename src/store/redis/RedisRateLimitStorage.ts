/**
 * The Redis store's token buckets: one Lua script per take (see ./rateLimitScripts.ts),
 * each bucket a hash with a hash tag of its own (safe on Redis Cluster).
 */
import { entityKey } from '../keys.js';
import {
  checkRateLimitTake,
  type RateLimitOutcome,
  type RateLimitRequest,
  type RateLimitStorage,
} from '../RateLimitStorage.js';
import type { ScriptDefinition } from './lockScripts.js';
import type { RedisContext } from './RedisContext.js';
import { TAKE_TOKENS_SCRIPT } from './rateLimitScripts.js';

/** The rate-limit scripts, by command name (registered by RedisStore). */
export const RATE_LIMIT_SCRIPTS: Readonly<Record<string, ScriptDefinition>> = Object.freeze({
  ringwayTakeTokens: TAKE_TOKENS_SCRIPT,
});

/** Token buckets in Redis. */
export class RedisRateLimitStorage implements RateLimitStorage {
  readonly #ctx: RedisContext;

  constructor(ctx: RedisContext) {
    this.#ctx = ctx;
  }

  async take(key: string, request: RateLimitRequest): Promise<RateLimitOutcome> {
    const r = checkRateLimitTake(key, request);
    const reply = (await this.#ctx.run(
      'ringwayTakeTokens',
      entityKey(this.#ctx.prefix, 'ratelimit', key),
      r.capacity,
      r.refillPerSec,
      r.cost,
    )) as [number, number];
    const wait = Number(reply[0]);
    return { allowed: wait === 0, remaining: Number(reply[1]), retryAfterMs: wait };
  }
}
