/**
 * Lua scripts of the Redis config part, one atomic round trip each (loaded with ioredis'
 * `defineCommand`). Semantics: `../ConfigStorage.ts`. Every key of one namespace shares the
 * namespace's hash tag (see ../keys.ts), so each script runs on one Cluster slot.
 *
 * Keys of namespace N (tag T):
 *   `<prefix>config:{T}:cur`      config key -> its newest version, `<version>:<updatedAt>:<0|1 deleted>:<JSON>` (hash)
 *   `<prefix>config:{T}:rev`      g = generation, i = revision (hash)
 *   `<prefix>config:{T}:log`      change entries as JSON (no value), newest first (list, at most logLimit)
 *   `<prefix>config:{T}:h:<key>`  versions of one key, newest first, same text as `cur` (list, at most historyLimit)
 *
 * SYNC_SCRIPT reads the history lists of the keys named in the log, building their names
 * from the `h:` prefix it is given; they carry the namespace's tag, so they live on the
 * script's slot even though they are not declared in KEYS.
 */
import type { ScriptDefinition } from './lockScripts.js';

/**
 * One write or delete with an optional compare-and-set. KEYS: cur, rev, log, history of the
 * key. ARGV: key, value JSON, expected version (-1: no check), historyLimit, logLimit,
 * channel, '1' to delete. Returns {'written', version, updatedAt, rev} | {'conflict',
 * live version} | {'absent'}.
 */
export const WRITE_SCRIPT: ScriptDefinition = {
  numberOfKeys: 4,
  lua: `
local now = redis.call('TIME')                                  -- the server clock
local nowUs = tonumber(now[1]) * 1000000 + tonumber(now[2])
local at = string.format('%.0f', math.floor(nowUs / 1000))      -- ms, every digit
local cur = redis.call('HGET', KEYS[1], ARGV[1])                -- the key's newest version, if any
local version, live = 0, 0
if cur then
  local v, d = string.match(cur, '^(%d+):%d+:(%d):')
  version = tonumber(v)                                         -- versions continue across deletes
  if d == '0' then live = version end                           -- a deleted key has no live version
end
local expected = tonumber(ARGV[3])
if expected >= 0 and expected ~= live then return {'conflict', live} end  -- compare-and-set failed
local del = ARGV[7] == '1'
if del and live == 0 then return {'absent'} end                 -- nothing to delete
local nextVersion = version + 1                                 -- no gaps
local value = ARGV[2]
if del then value = 'null' end
local stored = nextVersion .. ':' .. at .. ':' .. (del and '1' or '0') .. ':' .. value
redis.call('HSET', KEYS[1], ARGV[1], stored)                    -- the newest version
redis.call('LPUSH', KEYS[4], stored)                            -- and the key's history...
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[4]) - 1)          -- ...bounded
local gen = redis.call('HGET', KEYS[2], 'g')                    -- generation of the revision
if not gen then
  gen = string.format('%.0f', nowUs)                            -- first write, or the server lost the namespace
  redis.call('HSET', KEYS[2], 'g', gen)
end
local rev = redis.call('HINCRBY', KEYS[2], 'i', 1)              -- one step per write in the namespace
local entry = '{"gen":"' .. gen .. '","rev":' .. rev .. ',"key":' .. cjson.encode(ARGV[1])
  .. ',"version":' .. nextVersion .. ',"at":' .. at .. ',"deleted":' .. (del and 'true' or 'false') .. '}'
redis.call('LPUSH', KEYS[3], entry)                             -- the namespace's change log...
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[5]) - 1)          -- ...bounded
redis.call('PUBLISH', ARGV[6], entry .. '\\n' .. value)          -- watchers hear it now, with the value
return {'written', nextVersion, at, rev}
`,
};

/**
 * What a reader at a position missed under a prefix. KEYS: cur, rev, log. ARGV: generation,
 * revision (-1: no position), prefix, history key prefix. The empty position ('', 0) follows
 * into the first generation. Returns {'current', gen, rev} |
 * {'changes', gen, rev, {entry, stored version, ...} oldest first} | {'snapshot', gen, rev,
 * {key, stored version, ...}}.
 */
export const SYNC_SCRIPT: ScriptDefinition = {
  numberOfKeys: 3,
  readOnly: true,
  lua: `
local state = redis.call('HMGET', KEYS[2], 'g', 'i')
local gen = state[1]
local rev = tonumber(state[2] or '0')
local prefix = ARGV[3]
local function under(key) return string.sub(key, 1, #prefix) == prefix end
local from = tonumber(ARGV[2])
if gen and from >= 0 and (ARGV[1] == gen or (ARGV[1] == '' and from == 0)) then  -- the reader follows this generation
  if from == rev then return {'current', gen, rev} end
  if from < rev and rev - from <= redis.call('LLEN', KEYS[3]) then  -- the log covers the gap
    local raw = redis.call('LRANGE', KEYS[3], 0, rev - from - 1)
    local out = {}
    local complete = true
    for i = #raw, 1, -1 do                                      -- oldest first
      local e = cjson.decode(raw[i])
      if under(e.key) then
        local hist = ARGV[4] .. e.key                           -- this key's versions, newest first
        local head = redis.call('LINDEX', hist, 0)
        local found = false
        if head then
          local newest = tonumber(string.match(head, '^(%d+):'))
          local text = redis.call('LINDEX', hist, newest - e.version)  -- versions are gapless
          if text and tonumber(string.match(text, '^(%d+):')) == e.version then found = text end
        end
        if not found then complete = false break end            -- history no longer holds it
        out[#out + 1] = raw[i]
        out[#out + 1] = found
      end
    end
    if complete then return {'changes', gen, rev, out} end
  end
end
local out = {}                                                  -- otherwise: every live key under the prefix
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if under(all[i]) and string.match(all[i + 1], '^%d+:%d+:(%d):') == '0' then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return {'snapshot', gen or '', rev, out}
`,
};
