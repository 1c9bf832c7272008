/**
 * Lua scripts of the Redis registry part, one atomic round trip each (loaded with ioredis'
 * `defineCommand`). Semantics: `../RegistryStorage.ts`. Every key of one service shares a
 * hash tag (see ../keys.ts), so each script runs on one Cluster slot.
 *
 * Keys of service S (tag T), in the order every service script takes them:
 *   KEYS[1] `<prefix>registry:{T}:inst`   instance id -> record JSON (hash)
 *   KEYS[2] `<prefix>registry:{T}:epoch`  instance id -> epoch of its live registration (hash)
 *   KEYS[3] `<prefix>registry:{T}:exp`    instance id -> lease end, server ms (zset)
 *   KEYS[4] `<prefix>registry:{T}:gone`   instance id -> epoch of a removed registration (zset, tombstones)
 *   KEYS[5] `<prefix>registry:{T}:idx`    g = generation, i = index (hash)
 *   KEYS[6] `<prefix>registry:{T}:log`    change entries as JSON, newest first (list, at most logLimit)
 * and the catalog `<prefix>registry-catalog:{all}`: service -> latest lease end announced
 * (zset), touched beside each register/renew; `services()` checks each candidate's leases.
 *
 * Epochs are microsecond timestamps (16 digits): they are written with `%.0f` because Lua
 * 5.1's tostring keeps only 14 significant digits. Entries are built by concatenation with
 * `cjson.encode` for the strings, so they parse with JSON.parse exactly as the memory
 * backend's `JSON.stringify` output does.
 */
import type { ScriptDefinition } from './lockScripts.js';

/** Shared head of every service script: the server clock, `bump` and `sweep`. */
const PRELUDE = `
local now = redis.call('TIME')                                  -- the server clock: {seconds, microseconds}
local nowUs = tonumber(now[1]) * 1000000 + tonumber(now[2])     -- microseconds since the epoch, exact in a double
local nowMs = math.floor(nowUs / 1000)                          -- the same instant in ms (leases, entries)
local function fmt(n) return string.format('%.0f', n) end       -- every digit of a large integer
-- One change: bump the index (starting a generation when there is none), log it, publish it.
local function bump(kind, id, record, epoch, expiresAt, logLimit, channel)
  local gen = redis.call('HGET', KEYS[5], 'g')                  -- generation of the index
  if not gen then                                               -- first change, or the server lost the index:
    gen = fmt(nowUs)                                            -- a new generation, named by the clock
    redis.call('HSET', KEYS[5], 'g', gen)
  end
  local index = redis.call('HINCRBY', KEYS[5], 'i', 1)          -- exactly one step per change
  local entry = '{"gen":"' .. gen .. '","index":' .. index .. ',"type":"' .. kind
    .. '","id":' .. cjson.encode(id) .. ',"record":' .. cjson.encode(record)
    .. ',"epoch":' .. fmt(epoch) .. ',"at":' .. fmt(nowMs) .. ',"expiresAt":' .. fmt(expiresAt) .. '}'
  redis.call('LPUSH', KEYS[6], entry)                           -- the log, newest first...
  redis.call('LTRIM', KEYS[6], 0, logLimit - 1)                 -- ...bounded
  redis.call('PUBLISH', channel, entry)                         -- live watchers hear it now (best effort)
  return index
end
-- Expire instances whose lease ended (at most 1000 a call) and forget old tombstones.
local function sweep(logLimit, tombstoneMs, channel)
  local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', nowMs, 'LIMIT', 0, 1000)
  for _, id in ipairs(expired) do
    local record = redis.call('HGET', KEYS[1], id) or '{}'      -- as it was, for the watchers
    local epoch = tonumber(redis.call('HGET', KEYS[2], id) or '0')
    redis.call('HDEL', KEYS[1], id)                             -- gone from the instances...
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZADD', KEYS[4], fmt(epoch), id)                 -- ...remembered as a tombstone
    bump('expire', id, record, epoch, 0, logLimit, channel)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. fmt(nowUs - tombstoneMs * 1000)) -- old tombstones
end
`;

/**
 * A new registration. KEYS: the six service keys. ARGV: id, record, ttlMs, logLimit,
 * tombstoneMs, channel. Returns {epoch, index, expiresAt}.
 */
export const REGISTER_SCRIPT: ScriptDefinition = {
  numberOfKeys: 6,
  lua: `${PRELUDE}
local logLimit, channel = tonumber(ARGV[4]), ARGV[6]
sweep(logLimit, tonumber(ARGV[5]), channel)
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')    -- epoch of a live registration of this id
local tomb = tonumber(redis.call('ZSCORE', KEYS[4], ARGV[1]) or '0')  -- epoch of a removed one
local epoch = math.max(last + 1, tomb + 1, nowUs)               -- newer than both, and than any forgotten one
local expiresAt = nowMs + tonumber(ARGV[3])                     -- the lease
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])                   -- the record (replaces an older registration)
redis.call('HSET', KEYS[2], ARGV[1], fmt(epoch))
redis.call('ZADD', KEYS[3], fmt(expiresAt), ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])                            -- live again: no tombstone
local index = bump('register', ARGV[1], ARGV[2], epoch, expiresAt, logLimit, channel)
return {fmt(epoch), index, fmt(expiresAt)}
`,
};

/**
 * Heartbeat of one registration. KEYS: the six service keys. ARGV: id, epoch, record,
 * ttlMs, logLimit, tombstoneMs, channel. Returns {status, epoch in the store, index, expiresAt}.
 */
export const RENEW_SCRIPT: ScriptDefinition = {
  numberOfKeys: 6,
  lua: `${PRELUDE}
local logLimit, channel = tonumber(ARGV[5]), ARGV[7]
sweep(logLimit, tonumber(ARGV[6]), channel)                     -- our own lease may have just ended here
local ours = tonumber(ARGV[2])
local index = tonumber(redis.call('HGET', KEYS[5], 'i') or '0')
local expiresAt = nowMs + tonumber(ARGV[4])
local current = redis.call('HGET', KEYS[2], ARGV[1])            -- epoch of the live registration of this id
if current then
  local epoch = tonumber(current)
  if epoch > ours then return {'superseded', fmt(epoch), index, '0'} end  -- a newer one: never overwrite it
  if epoch == ours then                                         -- ours: extend the lease
    redis.call('ZADD', KEYS[3], fmt(expiresAt), ARGV[1])
    if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[3] then     -- same record: a plain heartbeat, no change
      return {'renewed', ARGV[2], index, fmt(expiresAt)}
    end
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])               -- the owner changed its record
    index = bump('update', ARGV[1], ARGV[3], ours, expiresAt, logLimit, channel)
    return {'updated', ARGV[2], index, fmt(expiresAt)}
  end
  -- an older registration holds the id (it came back before us after a restart): replace it
else
  local tomb = redis.call('ZSCORE', KEYS[4], ARGV[1])           -- was a newer registration removed?
  if tomb and tonumber(tomb) > ours then return {'superseded', fmt(tonumber(tomb)), index, '0'} end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])                   -- write our registration again
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], fmt(expiresAt), ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
index = bump('register', ARGV[1], ARGV[3], ours, expiresAt, logLimit, channel)
return {'reregistered', ARGV[2], index, fmt(expiresAt)}
`,
};

/**
 * Removes one registration. KEYS: the six service keys. ARGV: id, epoch, logLimit, channel.
 * Returns 1, or 0 when that registration is not the live one.
 */
export const DEREGISTER_SCRIPT: ScriptDefinition = {
  numberOfKeys: 6,
  lua: `${PRELUDE}
local current = redis.call('HGET', KEYS[2], ARGV[1])
if not current or tonumber(current) ~= tonumber(ARGV[2]) then return 0 end  -- not ours (any more)
local record = redis.call('HGET', KEYS[1], ARGV[1]) or '{}'
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])                   -- tombstone: a stale copy of us cannot return
bump('deregister', ARGV[1], record, tonumber(ARGV[2]), 0, tonumber(ARGV[3]), ARGV[4])
return 1
`,
};

/**
 * Sweeps, then tells a reader what it missed. KEYS: the six service keys. ARGV: generation,
 * index (-1: no position), logLimit, tombstoneMs, channel. The empty position ('', 0) follows
 * into the first generation. Returns {'current', gen, index} |
 * {'changes', gen, index, {entry, ...} newest first} | {'snapshot', gen, index, {id, record,
 * epoch, expiresAt, ...}}.
 */
export const SYNC_SCRIPT: ScriptDefinition = {
  numberOfKeys: 6,
  lua: `${PRELUDE}
sweep(tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5])
local state = redis.call('HMGET', KEYS[5], 'g', 'i')
local gen = state[1]
if not gen then return {'snapshot', '', 0, {}} end              -- no history at all: nothing registered
local index = tonumber(state[2] or '0')
local from = tonumber(ARGV[2])
if from >= 0 and (ARGV[1] == gen or (ARGV[1] == '' and from == 0)) then  -- the reader follows this generation
  if from == index then return {'current', gen, index} end
  if from < index and index - from <= redis.call('LLEN', KEYS[6]) then  -- the log still covers the gap
    return {'changes', gen, index, redis.call('LRANGE', KEYS[6], 0, index - from - 1)}
  end
end
local out = {}                                                  -- otherwise: every live instance
local live = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. fmt(nowMs), '+inf', 'WITHSCORES')
for i = 1, #live, 2 do
  local id = live[i]
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[1], id) or '{}'
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or '0'
  out[#out + 1] = live[i + 1]
end
return {'snapshot', gen, index, out}
`,
};

/**
 * Announces that a service has a lease until now + ttl. KEYS: catalog. ARGV: service, ttlMs.
 */
export const CATALOG_TOUCH_SCRIPT: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local horizon = nowMs + tonumber(ARGV[2])                       -- this lease ends then at the latest
local known = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
if horizon > known then                                         -- only ever push the horizon out
  redis.call('ZADD', KEYS[1], string.format('%.0f', horizon), ARGV[1])
end
return 1
`,
};

/**
 * Forgets services whose every announced lease ended; returns {now ms, {service, ...}}.
 * KEYS: catalog.
 */
export const CATALOG_LIST_SCRIPT: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowMs)          -- no lease announced beyond now
return {string.format('%.0f', nowMs), redis.call('ZRANGE', KEYS[1], 0, -1)}
`,
};
