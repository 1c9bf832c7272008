/**
 * Lua script of the Redis rate-limit part: one atomic round trip per take, by the Redis
 * server's clock (`TIME`), so processes with skewed clocks still agree.
 *
 * Key of bucket K (tag T, see ../keys.ts): `<prefix>ratelimit:{T}`, a hash with `tokens`
 * (left after the last take, 6 decimals rounded down; down to -TOKEN_EPSILON) and `at` (server time of the last refill, in
 * microseconds). It expires once the bucket would be full again.
 */
import { TOKEN_EPSILON } from '../RateLimitStorage.js';
import type { ScriptDefinition } from './lockScripts.js';

/**
 * KEYS[1]: the bucket. ARGV[1]: capacity; ARGV[2]: tokens per second; ARGV[3]: cost.
 * Returns {retryAfterMs (0: taken), whole tokens left}.
 */
export const TAKE_TOKENS_SCRIPT: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `
local t = redis.call('TIME')                                    -- server clock: one clock for all processes
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])           -- microseconds
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local short = ${TOKEN_EPSILON}                                      -- TOKEN_EPSILON: rounding a take may be short by
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then tokens = capacity; at = now end -- a new bucket starts full
if now > at then tokens = tokens + (now - at) * rate / 1000000; at = now end -- a clock step back refills nothing
if tokens > capacity then tokens = capacity end                 -- the call's capacity caps the bucket
local wait = 0
local taken = tokens >= cost - short                           -- a take short by under TOKEN_EPSILON goes through...
if taken then tokens = tokens - cost end                        -- ...and owes it (tokens may dip below 0)
tokens = math.floor(tokens * 1000000) / 1000000                 -- kept with 6 decimals, rounded down: rounding grants nothing
if not taken then
  wait = math.ceil((cost - short - tokens) * 1000 / rate)       -- ms until cost tokens are there
  if wait < 1 then wait = 1 end
  if wait > 1e15 then wait = 1e15 end                           -- MAX_RETRY_AFTER_MS
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%d', at))
local ttl = math.ceil((capacity - tokens) * 1000 / rate) + 1000 -- gone once it would be full again
if ttl > 1e15 then ttl = 1e15 end
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
return {wait, math.max(0, math.floor(tokens))}                 -- integers; a debt reports 0 left
`,
};
