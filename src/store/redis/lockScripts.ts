/**
 * Lua scripts of the Redis lock part, one atomic round trip each (loaded with ioredis'
 * `defineCommand`: sent by SHA, re-sent in full on NOSCRIPT). Every key of one resource
 * shares a hash tag (see ../keys.ts), so each script runs on one Cluster slot.
 *
 * Keys of resource R (tag T):
 *   `<prefix>lock:{T}`        lease hash: h = holder id, t = fencing token
 *   `<prefix>lock:{T}:fence`  last token granted (string), kept `fenceRetentionMs`
 *   `<prefix>lock:{T}:q`      fair queue: waiter ids, head first (list)
 *   `<prefix>lock:{T}:qt`     fair queue deadlines: waiter id -> server ms after which it loses its place (zset)
 *
 * Tokens are `max(last + 1, server TIME in microseconds)`: strictly increasing while the
 * counter lives, and still above every earlier token after the counter is lost (a restart
 * of a Redis that keeps nothing on disk), provided the server clock did not step back.
 * Tokens are written with `%.0f` because Lua 5.1's tostring keeps only 14 significant
 * digits and a microsecond timestamp has 16.
 */

/** Definition handed to ioredis `defineCommand`. */
export interface ScriptDefinition {
  readonly lua: string;
  readonly numberOfKeys: number;
  readonly readOnly?: boolean;
}

/**
 * One acquire attempt.
 * KEYS: lease, fence, queue, queue deadlines. ARGV: holder, ttlMs, fair ('1'|'0'), queueTtlMs,
 * fenceRetentionMs. Returns the token (> 0) when granted. When refused: R = -1 when free but
 * another waiter is ahead, else -1 - (remaining lease in ms); a plain attempt returns R, a fair
 * one {R, its place in the queue (0: head)}.
 */
export const ACQUIRE_SCRIPT: ScriptDefinition = {
  numberOfKeys: 4,
  lua: `
local now = redis.call('TIME')                                  -- the server clock: {seconds, microseconds}
local nowUs = tonumber(now[1]) * 1000000 + tonumber(now[2])     -- microseconds since the epoch, exact in a double
local nowMs = math.floor(nowUs / 1000)                          -- the same instant in ms, for queue deadlines
local head = redis.call('LINDEX', KEYS[3], 0)                   -- first waiter of the fair queue, or false
while head do                                                   -- drop waiters at the head that stopped polling
  local deadline = redis.call('ZSCORE', KEYS[4], head)          -- when the head loses its place
  if deadline and tonumber(deadline) > nowMs then break end     -- still alive: it keeps the head
  redis.call('LPOP', KEYS[3])                                   -- gone: remove it from the order...
  redis.call('ZREM', KEYS[4], head)                             -- ...and from the deadlines
  head = redis.call('LINDEX', KEYS[3], 0)                       -- and look at the next one
end
local holder = redis.call('HGET', KEYS[1], 'h')                 -- current holder; false when free or expired
if not holder and (not head or head == ARGV[1]) then            -- free, and nobody queued ahead of us
  local last = tonumber(redis.call('GET', KEYS[2]) or '0')      -- last token granted for this resource
  local token = math.max(last + 1, nowUs)                       -- above every earlier token, even if the counter was lost
  local text = string.format('%.0f', token)                     -- all 16 digits
  redis.call('HSET', KEYS[1], 'h', ARGV[1], 't', text)          -- the lease: ours, with its token
  redis.call('PEXPIRE', KEYS[1], ARGV[2])                       -- ends ttlMs from now unless extended
  redis.call('SET', KEYS[2], text, 'PX', ARGV[5])               -- remember the token for the next grant
  if head then                                                  -- we were the head of the queue:
    redis.call('LPOP', KEYS[3])                                 -- leave it
    redis.call('ZREM', KEYS[4], ARGV[1])
  end
  return token
end
local refused = -1                                              -- free, but another waiter is ahead of us
if holder then refused = -1 - redis.call('PTTL', KEYS[1]) end   -- held: -1 - how long the lease still runs
if ARGV[3] == '1' then                                          -- fair mode: take or keep a place in the queue
  local place = redis.call('LPOS', KEYS[3], ARGV[1])            -- our place (0: head), or false
  if not place then                                             -- not queued yet:
    place = redis.call('RPUSH', KEYS[3], ARGV[1]) - 1           -- join at the tail
  end
  redis.call('ZADD', KEYS[4], nowMs + tonumber(ARGV[4]), ARGV[1]) -- we polled: our place lasts queueTtlMs more
  redis.call('PEXPIRE', KEYS[3], ARGV[4])                       -- the queue vanishes when its last waiter
  redis.call('PEXPIRE', KEYS[4], ARGV[4])                       -- stops polling
  return {refused, place}                                       -- the waiter's place tells it how often to poll
end
return refused                                                  -- plain waiters poll with backoff
`,
};

/**
 * Extends a lease we hold. KEYS: lease. ARGV: holder, ttlMs. Returns 1, or 0 when not ours.
 */
export const EXTEND_SCRIPT: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `
if redis.call('HGET', KEYS[1], 'h') ~= ARGV[1] then return 0 end  -- free, expired or someone else's
redis.call('PEXPIRE', KEYS[1], ARGV[2])                           -- the lease now ends ttlMs from now
return 1
`,
};

/**
 * Raises the token of a lease we hold (Redlock's write-back of the quorum's highest token).
 * KEYS: lease, fence. ARGV: holder, token, fenceRetentionMs. Returns 1, or 0 when not ours.
 */
export const RAISE_TOKEN_SCRIPT: ScriptDefinition = {
  numberOfKeys: 2,
  lua: `
local lease = redis.call('HMGET', KEYS[1], 'h', 't')            -- holder and token of the lease
if lease[1] ~= ARGV[1] then return 0 end                        -- not ours: nothing to raise
local token = math.max(tonumber(ARGV[2]), tonumber(lease[2]))   -- never lower a token
local text = string.format('%.0f', token)                       -- all 16 digits
redis.call('HSET', KEYS[1], 't', text)                          -- the lease carries the raised token
local last = tonumber(redis.call('GET', KEYS[2]) or '0')        -- the fencing counter
if token > last then                                            -- later grants must go above it
  redis.call('SET', KEYS[2], text, 'PX', ARGV[3])
end
return 1
`,
};

/**
 * Releases a lease we hold and wakes the waiter whose turn it is: the head of the fair queue
 * (after dropping heads that stopped polling). Only that waiter is woken (message
 * `<waiter id> <resource>`), so a release costs one more attempt, not one per waiter; queued
 * waiters behind it only poll to keep their place, plain waiters poll with backoff.
 * KEYS: lease, queue, queue deadlines. ARGV: holder, channel, resource. Returns 1, or 0 when
 * not ours (released twice, or expired: harmless).
 */
export const RELEASE_SCRIPT: ScriptDefinition = {
  numberOfKeys: 3,
  lua: `
if redis.call('HGET', KEYS[1], 'h') ~= ARGV[1] then return 0 end -- not ours: leave it alone
redis.call('DEL', KEYS[1])                                      -- free the resource
local head = redis.call('LINDEX', KEYS[2], 0)                   -- fair queue head, or false
if head then                                                    -- skip heads that stopped polling
  local now = redis.call('TIME')
  local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  while head do
    local deadline = redis.call('ZSCORE', KEYS[3], head)
    if deadline and tonumber(deadline) > nowMs then break end
    redis.call('LPOP', KEYS[2])
    redis.call('ZREM', KEYS[3], head)
    head = redis.call('LINDEX', KEYS[2], 0)
  end
end
if head then                                                    -- its turn now:
  redis.call('PUBLISH', ARGV[2], head .. ' ' .. ARGV[3])        -- tell it now, not at its next poll
end
return 1
`,
};

/**
 * Takes a waiter out of the fair queue (it gave up). KEYS: lease, queue, queue deadlines.
 * ARGV: holder, channel, resource. Returns 1.
 */
export const LEAVE_QUEUE_SCRIPT: ScriptDefinition = {
  numberOfKeys: 3,
  lua: `
local wasHead = redis.call('LINDEX', KEYS[2], 0) == ARGV[1]     -- did we block the queue?
redis.call('LREM', KEYS[2], 0, ARGV[1])                         -- leave the order
redis.call('ZREM', KEYS[3], ARGV[1])                            -- and the deadlines
local head = redis.call('LINDEX', KEYS[2], 0)                   -- the waiter now first in line
if wasHead and head and redis.call('EXISTS', KEYS[1]) == 0 then -- we blocked a free resource:
  redis.call('PUBLISH', ARGV[2], head .. ' ' .. ARGV[3])        -- wake the next waiter
end
return 1
`,
};

/**
 * Reads a resource's state. KEYS: lease, queue, queue deadlines. Returns
 * {holder or '', token, remaining ms (negative when free), {live waiter ids, head first}}.
 */
export const INSPECT_SCRIPT: ScriptDefinition = {
  numberOfKeys: 3,
  readOnly: true,
  lua: `
local now = redis.call('TIME')                                  -- the server clock
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local lease = redis.call('HMGET', KEYS[1], 'h', 't')            -- holder and token
local live = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do    -- every queued waiter, head first
  local deadline = redis.call('ZSCORE', KEYS[3], id)
  if deadline and tonumber(deadline) > nowMs then               -- still polling: report it
    live[#live + 1] = id
  end
end
return {lease[1] or '', lease[2] or '0', redis.call('PTTL', KEYS[1]), live}
`,
};
