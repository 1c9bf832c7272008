/**
 * The protected resource of the lock proofs: a Redis key that accepts a write only when it
 * carries a fencing token larger than every token it has seen (Kleppmann, "How to do
 * distributed locking", 2016), and logs accepted tokens in order.
 * KEYS: the fenced hash, the log list. ARGV: the token. Returns 1 accepted, 0 refused (stale).
 */
export const FENCED_WRITE = `
local seen = tonumber(redis.call('HGET', KEYS[1], 'token') or '0')  -- highest token seen so far
if tonumber(ARGV[1]) <= seen then return 0 end                      -- stale holder: refuse
redis.call('HSET', KEYS[1], 'token', ARGV[1])                       -- remember the new highest
redis.call('RPUSH', KEYS[2], ARGV[1])                               -- log accepted writes, in order
return 1
`;
