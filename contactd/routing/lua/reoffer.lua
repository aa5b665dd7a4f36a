-- reoffer: a decline/no-answer exclusion on a waiting contact lapsed; try to dispatch it
-- again (to its designated agent, or in its queue).
-- KEYS, ARGV[1,2,4]: see _lib.lua.  ARGV[3]: {id}
-- Returns r = {dispatched: n} | need.
local c = load_contact(A.id)
local due = tonumber(redis.call('ZSCORE', K_REOFFER, A.id) or '0')
if due > NOW then return ok({ dispatched = 0 }) end
if not c or c.st ~= 'queued' then
  redis.call('ZREM', K_REOFFER, A.id)
  return ok({ dispatched = 0 })
end
if c.dw then
  local a = load_agent(c.tgt)
  if not a then
    redis.call('ZREM', K_REOFFER, A.id)
    return ok({ dispatched = 0 })
  end
  local need = require_queues(agent_queue_ids(a))
  if need then return need end
  dispatch_agent(a.id)
  local after = load_contact(A.id)
  if after.st == 'queued' then arm_reoffer(after) else redis.call('ZREM', K_REOFFER, A.id) end
  return ok({ dispatched = after.st == 'queued' and 0 or 1 })
end
local need = require_queues({ c.q })
if need then return need end
local n = dispatch_queue(c.q)
local after = load_contact(A.id)
if after.st == 'queued' then arm_reoffer(after) else redis.call('ZREM', K_REOFFER, A.id) end
return ok({ dispatched = n })
