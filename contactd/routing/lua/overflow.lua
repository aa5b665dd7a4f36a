-- overflow: a queued contact reached its queue's max_wait_s. It moves to the overflow queue
-- (keeping its priority and original time) or, for "message" / a full target, leaves a
-- message (final state left_message). Offered contacts are checked again after the offer.
-- KEYS, ARGV[1,2,4]: see _lib.lua.  ARGV[3]: {id}
-- Returns r = {moved_to: queue|"message"|null} | need.
local c = load_contact(A.id)
if not c or c.st ~= 'queued' then
  if c and c.st == 'offered' then
    redis.call('ZADD', K_MAXWAIT, c.od, c.id)
  else
    redis.call('ZREM', K_MAXWAIT, A.id)
  end
  return ok({ moved_to = cjson.null })
end
local due = tonumber(redis.call('ZSCORE', K_MAXWAIT, c.id) or '0')
if due > NOW then return ok({ moved_to = cjson.null }) end
local need = require_queues({ c.q })
if need then return need end
local target = Q[c.q].cfg.overflow_to
local ids = { c.q }
if target ~= cjson.null and target ~= 'message' then ids[2] = target end
need = require_queues(ids)
if need then return need end
redis.call('ZREM', K_MAXWAIT, c.id)
local tq = (target ~= cjson.null and target ~= 'message') and Q[target] or nil
if tq and (tq.cfg.removed or waiting_count(tq) >= tq.cfg.max_waiting) then tq = nil end
drop_from_waiting(c)
local from = c.q
if not tq then
  emit('contact.overflowed', { contact_id = c.id, queue_id = from, to = 'message', waited_ms = NOW - c.t0 })
  finalize(c, 'left_message', 'max_wait')
  return ok({ moved_to = 'message' })
end
c.q = tq.cfg.id
c.ch = tq.cfg.channel
c.tgt = nil
c.fb = nil
c.ex = {}
redis.call('ZADD', tq.w, c.sc, c.id)
if tq.cfg.max_wait_ms ~= cjson.null then redis.call('ZADD', K_MAXWAIT, NOW + tq.cfg.max_wait_ms, c.id) end
save_contact(c)
emit('contact.overflowed', { contact_id = c.id, queue_id = from, to = c.q, waited_ms = NOW - c.t0 })
dispatch_queue(c.q)
return ok({ moved_to = c.q })
