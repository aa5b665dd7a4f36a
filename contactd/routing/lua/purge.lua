-- purge: forget contacts that reached a final state before `before` (they are kept for a
-- retention period so retries of final operations stay idempotent).
-- KEYS, ARGV[1,2,4]: see _lib.lua (no queue keys).  ARGV[3]: {before, limit}
-- Returns r = {purged: n}.
local ids = redis.call('ZRANGEBYSCORE', K_FINALS, '-inf', A.before, 'LIMIT', 0, A.limit)
if #ids > 0 then
  redis.call('HDEL', K_CONTACTS, unpack(ids))
  redis.call('ZREM', K_FINALS, unpack(ids))
end
return ok({ purged = #ids })
