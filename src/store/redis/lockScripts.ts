/**
 * Lua scripts of the Redis lock part, one atomic round trip each (loaded with ioredis'
 * `defineCommand`: sent by SHA, re-sent in full on NOSCRIPT). Every key of one resource
 * shares a hash tag (see ../keys.ts), so each script runs on one Cluster slot.
 *
 * Keys of resource R (tag T):
 *   `<prefix>lock:{T}`        the lease: '<holder id> <token>[ q]' (string), expiring with the lease
 *   `<prefix>lock:{T}:fence`  last token granted: '<token>[ q]' (string), kept `fenceRetentionMs`
 *   `<prefix>lock:{T}:q`      fair queue: waiter ids, head first (list)
 *   `<prefix>lock:{T}:qt`     fair queue deadlines: waiter id -> server ms after which it loses its place (zset)
 *   `<prefix>lock:{T}:qttl`   fair queue leases: waiter id -> the ttl it asked for (hash)
 *
 * The ' q' mark: whenever the queue is not empty, the lease and the fence (each, if it
 * exists) end with ' q'. The mark may outlive the queue (waiters that stop polling, the
 * queue key expiring), never the reverse, so an unmarked lease or fence proves the queue
 * empty: a release of an unmarked lease (GET, DEL) and a grant of a free resource whose
 * fence is unmarked (GET, GET, SET, SET) skip the queue. The first waiter to queue marks
 * both; a grant that finds the queue empty unmarks them; grants to a waiter of the queue
 * mark them (others may still wait).
 *
 * Fair hand-over: releasing a resource with a queue grants it at once to the first waiter
 * still polling, with the ttl that waiter asked for, and announces `<waiter> <token> <resource>`
 * on the store's lock channel, and on `<channel>:<owner>` when the waiter's id is
 * `<owner>.<...>` (so each process can listen to its own waiters' turns only). The waiter
 * learns it holds the lock from that message (or, if the message is lost, from its next
 * poll, which finds itself the holder), without another round trip.
 *
 * Plain fast path: a plain (non-fair) acquire and the release of a plain lock are sent first
 * as PLAIN_ACQUIRE (2 keys, 3 arguments) and PLAIN_RELEASE (1 key, 1 argument), which handle
 * the common case, no queue, with the same Redis calls as the full scripts and answer
 * "take the full path" otherwise. Every key and argument costs the client and the server
 * about a microsecond each way, so sending 2 keys instead of 5 is most of what an
 * uncontended pair can save (measured: 10-13 % of its time).
 *
 * A token is the larger of `last + 1` (the last token granted, while its counter lives) and
 * the server's TIME in microseconds. The counter alone keeps tokens strictly increasing while
 * the server runs, even if its clock steps back; the clock keeps them increasing where the
 * counter is behind: after a restart of a Redis that keeps nothing on disk, after retention
 * ran out, and after a failover to a replica that missed the last grants (it has the counter
 * as it was before them, so `last + 1` alone would give a lost grant's token out again). A
 * resource gets at most one grant per script run, which takes well over a microsecond, so
 * the counter does not run ahead of the clock; across a restart or failover this rests on
 * the new server's clock not being behind the old one's by more than the switch took.
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
 * Lua opening the scripts that act only for the holder (KEYS[1] the lease, ARGV[1] the holder):
 * reads the lease into `lease` and `mine`, and returns 0 unless the holder holds it.
 */
const HELD_BY_US = `
local lease = redis.call('GET', KEYS[1])                        -- '<holder> <token>[ q]', or false
local mine = ARGV[1] .. ' '
if not lease or string.sub(lease, 1, #mine) ~= mine then return 0 end -- free, expired or someone else's: leave it alone
`;

/**
 * Lua shared by RELEASE and LEAVE_QUEUE: hands a free resource to the first waiter still
 * polling. KEYS: lease, fence, queue, queue deadlines, queue leases. ARGV[2] channel,
 * ARGV[3] resource, ARGV[4] fenceRetentionMs.
 */
const HAND_OVER = `
local head = redis.call('LINDEX', KEYS[3], 0)                   -- first waiter in line, if any
if head then
  local now = redis.call('TIME')                                -- the server clock
  local nowUs = tonumber(now[1]) * 1000000 + tonumber(now[2])   -- in microseconds
  local nowMs = math.floor(nowUs / 1000)                        -- and in ms, for deadlines
  while head do                                                 -- skip waiters that stopped polling
    local deadline = redis.call('ZSCORE', KEYS[4], head)
    if deadline and tonumber(deadline) > nowMs then break end
    redis.call('LPOP', KEYS[3])
    redis.call('ZREM', KEYS[4], head)
    redis.call('HDEL', KEYS[5], head)
    head = redis.call('LINDEX', KEYS[3], 0)
  end
  local ttl = head and redis.call('HGET', KEYS[5], head)        -- the lease the head asked for
  if ttl then
    local fence = redis.call('GET', KEYS[2])                    -- last token granted, if remembered
    local last = fence and tonumber(string.match(fence, '^%d+'))
    local token = math.max(last and last + 1 or 0, nowUs)       -- the next token (see top)
    local text = string.format('%.0f', token)                   -- all 16 digits
    redis.call('SET', KEYS[1], head .. ' ' .. text .. ' q', 'PX', ttl) -- the head holds it now, for its ttl
    redis.call('SET', KEYS[2], text .. ' q', 'PX', ARGV[4])     -- remember the token (others may still wait)
    redis.call('LPOP', KEYS[3])                                 -- it leaves the queue
    redis.call('ZREM', KEYS[4], head)
    redis.call('HDEL', KEYS[5], head)
    local message = head .. ' ' .. text .. ' ' .. ARGV[3]
    redis.call('PUBLISH', ARGV[2], message)                     -- tell it, wherever it waits:
    local dot = string.find(head, '.', 1, true)                 -- on the owner's own channel, too
    if dot and dot > 1 then redis.call('PUBLISH', ARGV[2] .. ':' .. string.sub(head, 1, dot - 1), message) end
  end
end
`;

/**
 * One acquire attempt.
 * KEYS: lease, fence, queue, queue deadlines, queue leases. ARGV: holder, ttlMs, fair ('1'|'0'),
 * queueTtlMs, fenceRetentionMs.
 * Returns the token (> 0) when granted now; {token, remaining lease ms} when the resource was
 * already handed over to this holder. When refused: R = -1 when free but another waiter is
 * ahead, else -1 - (remaining lease in ms); a plain attempt returns R, a fair one
 * {R, its place in the queue (0: head)}.
 */
export const ACQUIRE_SCRIPT: ScriptDefinition = {
  numberOfKeys: 5,
  lua: `
local lease = redis.call('GET', KEYS[1])                        -- '<holder> <token>[ q]', or false when free
local mine = ARGV[1] .. ' '
if lease and string.sub(lease, 1, #mine) == mine then           -- already ours: handed over while we waited
  return {tonumber(string.match(lease, '^%d+', #mine + 1)), redis.call('PTTL', KEYS[1])} -- the grant and what is left
end
local fair = ARGV[3] == '1'
local fence = false                                             -- '<last token>[ q]', read when free
local queued                                                    -- whether the queue may hold waiters
if lease then
  queued = fair                                                 -- held: a plain attempt is refused as is
else
  fence = redis.call('GET', KEYS[2])
  queued = not fence or string.sub(fence, -2) == ' q'           -- an unmarked fence: no queue (see top)
end
local head = false
local nowMs
if queued then
  head = redis.call('LINDEX', KEYS[3], 0)                       -- first waiter of the fair queue, or false
  if head or fair then                                          -- a queue to look after: read the clock
    local now = redis.call('TIME')
    nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  end
  while head do                                                 -- drop waiters at the head that stopped polling
    local deadline = redis.call('ZSCORE', KEYS[4], head)        -- when the head loses its place
    if deadline and tonumber(deadline) > nowMs then break end   -- still alive: it keeps the head
    redis.call('LPOP', KEYS[3])                                 -- gone: remove it from the order,
    redis.call('ZREM', KEYS[4], head)                           -- the deadlines
    redis.call('HDEL', KEYS[5], head)                           -- and the leases
    head = redis.call('LINDEX', KEYS[3], 0)                     -- and look at the next one
  end
end
if not lease and (not head or head == ARGV[1]) then             -- free, and nobody queued ahead of us
  local last = fence and tonumber(string.match(fence, '^%d+'))  -- last token granted, if remembered
  local now = redis.call('TIME')                                -- the server clock, in microseconds:
  local token = math.max(last and last + 1 or 0, tonumber(now[1]) * 1000000 + tonumber(now[2])) -- see top
  local text = string.format('%.0f', token)                     -- all 16 digits
  local mark = ''                                               -- the queue is empty (or was never there)
  if head then                                                  -- we were the head of the queue:
    redis.call('LPOP', KEYS[3])                                 -- leave it
    redis.call('ZREM', KEYS[4], ARGV[1])
    redis.call('HDEL', KEYS[5], ARGV[1])
    mark = ' q'                                                 -- others may still wait
  end
  redis.call('SET', KEYS[1], mine .. text .. mark, 'PX', ARGV[2]) -- the lease: ours, with its token, for ttlMs
  redis.call('SET', KEYS[2], text .. mark, 'PX', ARGV[5])       -- remember the token for the next grant
  return token
end
local refused = -1                                              -- free, but another waiter is ahead of us
if lease then refused = -1 - redis.call('PTTL', KEYS[1]) end    -- held: -1 - how long the lease still runs
if fair then                                                    -- fair mode: take or keep a place in the queue
  local place = redis.call('LPOS', KEYS[3], ARGV[1])            -- our place (0: head), or false
  if not place then                                             -- not queued yet:
    place = redis.call('RPUSH', KEYS[3], ARGV[1]) - 1           -- join at the tail
    if place == 0 and lease then                                -- a new queue (so the resource is held):
      if string.sub(lease, -2) ~= ' q' then                     -- mark the lease
        redis.call('SET', KEYS[1], lease .. ' q', 'KEEPTTL')
      end
      fence = redis.call('GET', KEYS[2])                        -- and the fence
      if fence and string.sub(fence, -2) ~= ' q' then
        redis.call('SET', KEYS[2], fence .. ' q', 'KEEPTTL')
      end
    end
  end
  redis.call('ZADD', KEYS[4], nowMs + tonumber(ARGV[4]), ARGV[1]) -- we polled: our place lasts queueTtlMs more
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[2])                 -- the lease to hand over to us
  for i = 3, 5 do                                               -- the queue vanishes when its last waiter stops
    if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[4]) then       -- polling: only ever lengthened, so a waiter
      redis.call('PEXPIRE', KEYS[i], ARGV[4])                   -- with a short queueTtlMs never cuts others' places
    end                                                         -- short (a new key's PTTL is -1: set)
  end
  return {refused, place}                                       -- the waiter's place tells it how often to poll
end
return refused                                                  -- plain waiters poll with backoff
`,
};

/**
 * A plain acquire attempt, for the common case. KEYS: lease, fence. ARGV: holder, ttlMs,
 * fenceRetentionMs. Returns what ACQUIRE returns for a plain attempt (a token; {token,
 * remaining lease ms} when already ours; -1 - remaining lease when held), or 0 when the
 * resource is free but its fence is marked or gone: a queue may wait, so ACQUIRE must decide.
 */
export const PLAIN_ACQUIRE_SCRIPT: ScriptDefinition = {
  numberOfKeys: 2,
  lua: `
local lease = redis.call('GET', KEYS[1])                        -- '<holder> <token>[ q]', or false when free
local mine = ARGV[1] .. ' '
if lease then
  if string.sub(lease, 1, #mine) == mine then                   -- already ours (a retry after a lost reply)
    return {tonumber(string.match(lease, '^%d+', #mine + 1)), redis.call('PTTL', KEYS[1])}
  end
  return -1 - redis.call('PTTL', KEYS[1])                       -- held: -1 - how long the lease still runs
end
local fence = redis.call('GET', KEYS[2])                        -- '<last token>[ q]'
if not fence or string.sub(fence, -2) == ' q' then return 0 end -- a queue may wait, or no counter: ACQUIRE decides
local now = redis.call('TIME')                                  -- the server clock, in microseconds:
local token = math.max(tonumber(fence) + 1, tonumber(now[1]) * 1000000 + tonumber(now[2])) -- see top
local text = string.format('%.0f', token)                       -- an unmarked fence is digits only; all 16 of them
redis.call('SET', KEYS[1], mine .. text, 'PX', ARGV[2])         -- the lease: ours, with its token, for ttlMs
redis.call('SET', KEYS[2], text, 'PX', ARGV[3])                 -- remember the token for the next grant
return tonumber(text)
`,
};

/**
 * Releases a plain lease we hold. KEYS: lease. ARGV: holder. Returns 1 when released, 0 when
 * not ours, 2 when the lease is marked ' q' (left as is: RELEASE must hand it over).
 */
export const PLAIN_RELEASE_SCRIPT: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `${HELD_BY_US}
if string.sub(lease, -2) == ' q' then return 2 end              -- waiters may be queued: RELEASE hands over
redis.call('DEL', KEYS[1])                                      -- free the resource
return 1
`,
};

/**
 * Extends a lease we hold, and keeps the fencing counter at least fenceRetentionMs from now
 * (a lock held longer than that by extends must not lose it). KEYS: lease, fence. ARGV:
 * holder, ttlMs, fenceRetentionMs. Returns 1, or 0 when not ours.
 */
export const EXTEND_SCRIPT: ScriptDefinition = {
  numberOfKeys: 2,
  lua: `${HELD_BY_US}
redis.call('PEXPIRE', KEYS[1], ARGV[2])                         -- the lease now ends ttlMs from now
if redis.call('PEXPIRE', KEYS[2], ARGV[3]) == 0 then            -- the counter lives on, or, already gone:
  local mark = ''                                               -- ours is the last token granted
  if string.sub(lease, -2) == ' q' then mark = ' q' end         -- (with the queue's mark, if any)
  redis.call('SET', KEYS[2], string.match(lease, '^%d+', #mine + 1) .. mark, 'PX', ARGV[3])
end
return 1
`,
};

/**
 * Raises the token of a lease we hold (Redlock's write-back of the quorum's highest token).
 * KEYS: lease, fence. ARGV: holder, token, fenceRetentionMs. Returns 1, or 0 when not ours.
 */
export const RAISE_TOKEN_SCRIPT: ScriptDefinition = {
  numberOfKeys: 2,
  lua: `${HELD_BY_US}
local token = math.max(tonumber(ARGV[2]), tonumber(string.match(lease, '^%d+', #mine + 1))) -- never lower a token
local text = string.format('%.0f', token)                       -- all 16 digits
local mark = ''
if string.sub(lease, -2) == ' q' then mark = ' q' end           -- a queue may wait: keep the mark
redis.call('SET', KEYS[1], mine .. text .. mark, 'KEEPTTL')     -- the lease carries the raised token
local fence = redis.call('GET', KEYS[2])                        -- the fencing counter
local last = fence and tonumber(string.match(fence, '^%d+')) or 0
if token > last then                                            -- later grants must go above it
  if fence and string.sub(fence, -2) == ' q' then mark = ' q' end
  redis.call('SET', KEYS[2], text .. mark, 'PX', ARGV[3])
end
return 1
`,
};

/**
 * Releases a lease we hold, and hands the resource to the first waiter of its fair queue
 * (only a lease marked ' q' can have one).
 * KEYS: lease, fence, queue, queue deadlines, queue leases. ARGV: holder, channel, resource,
 * fenceRetentionMs. Returns 1, or 0 when not ours (released twice, or expired: harmless).
 */
export const RELEASE_SCRIPT: ScriptDefinition = {
  numberOfKeys: 5,
  lua: `${HELD_BY_US}
redis.call('DEL', KEYS[1])                                      -- free the resource
if string.sub(lease, -2) == ' q' then                           -- waiters may be queued:
${HAND_OVER}
end
return 1
`,
};

/**
 * Takes a waiter out of the fair queue (it gave up). If the resource was handed to it in the
 * meantime, releases it; a free resource goes to the next waiter. KEYS: lease, fence, queue,
 * queue deadlines, queue leases. ARGV: holder, channel, resource, fenceRetentionMs. Returns 1.
 */
export const LEAVE_QUEUE_SCRIPT: ScriptDefinition = {
  numberOfKeys: 5,
  lua: `
redis.call('LREM', KEYS[3], 0, ARGV[1])                         -- leave the order,
redis.call('ZREM', KEYS[4], ARGV[1])                            -- the deadlines
redis.call('HDEL', KEYS[5], ARGV[1])                            -- and the leases
local lease = redis.call('GET', KEYS[1])                        -- '<holder> <token>[ q]', or false
local mine = ARGV[1] .. ' '
if lease and string.sub(lease, 1, #mine) == mine then           -- handed to us as we gave up:
  redis.call('DEL', KEYS[1])                                    -- give it back
  lease = false
end
if not lease then                                               -- free: the next waiter may have it
${HAND_OVER}
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
local lease = redis.call('GET', KEYS[1])                        -- '<holder> <token>[ q]', or false
local holder, token = '', '0'
if lease then
  local space = string.find(lease, ' ', 1, true)                -- holder ids contain no space
  holder = string.sub(lease, 1, space - 1)
  token = string.match(lease, '^%d+', space + 1)
end
local live = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do    -- every queued waiter, head first
  local deadline = redis.call('ZSCORE', KEYS[3], id)
  if deadline and tonumber(deadline) > nowMs then               -- still polling: report it
    live[#live + 1] = id
  end
end
return {holder, token, redis.call('PTTL', KEYS[1]), live}
`,
};
