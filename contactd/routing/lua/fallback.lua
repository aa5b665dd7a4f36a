-- fallback: a contact waiting for a designated agent waited fallback_after_s; it joins its
-- queue (original time and priority) under the queue's fallback strategy.
-- KEYS, ARGV[1,2,4]: see _lib.lua.  ARGV[3]: {id}
-- Returns r = {fell_back: bool} | need.
local c = load_contact(A.id)
if not c or c.st ~= 'queued' or not c.dw then
  redis.call('ZREM', K_FALLBACK, A.id)
  return ok({ fell_back = false })
end
local due = tonumber(redis.call('ZSCORE', K_FALLBACK, c.id) or '0')
if due > NOW then return ok({ fell_back = false }) end
local need = require_queues({ c.q })
if need then return need end
local target = c.tgt
drop_from_waiting(c)
c.tgt = nil
c.fb = nil
redis.call('ZADD', Q[c.q].w, c.sc, c.id)
save_contact(c)
emit('contact.fell_back', { contact_id = c.id, queue_id = c.q, target_agent_id = target })
dispatch_queue(c.q)
return ok({ fell_back = true })
