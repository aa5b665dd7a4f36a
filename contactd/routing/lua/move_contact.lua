-- move_contact: a supervisor moves a waiting contact to another queue of the same channel.
-- It keeps its priority and original time (its wait counts from when it first arrived),
-- loses any named target and decline exclusions, and is dispatched in the new queue at once.
-- KEYS, ARGV[1,2,4]: see _lib.lua.  ARGV[3]: {id, to}
-- Returns r = contact view | errors contact_not_found, contact_not_waiting, unknown_queue,
--   channel_mismatch, queue_full | need.
local c = load_contact(A.id)
if not c then return fail('contact_not_found', 'no contact ' .. A.id) end
if c.st ~= 'queued' then
  return fail('contact_not_waiting', 'contact ' .. A.id .. ' is ' .. c.st .. ', not waiting')
end
local need = require_queues({ c.q, A.to })
if need then return need end
local tq = Q[A.to]
if tq.cfg.removed then return fail('unknown_queue', 'queue ' .. A.to .. ' is not configured') end
if A.to == c.q then return fail('invalid_state', 'contact ' .. A.id .. ' is already in ' .. A.to) end
if tq.cfg.channel ~= c.ch then
  return fail('channel_mismatch', 'queue ' .. A.to .. ' takes ' .. tq.cfg.channel .. ', not ' .. c.ch)
end
if waiting_count(tq) >= tq.cfg.max_waiting then
  return fail('queue_full', 'queue ' .. A.to .. ' is full')
end
drop_from_waiting(c)
local from = c.q
c.q = A.to
c.tgt = nil
c.fb = nil
c.ex = {}
if c.sc < 0 then c.sc = base_score(c.p, c.t0) end -- a requeued-at-head contact: normal order
redis.call('ZREM', K_REOFFER, c.id)
redis.call('ZREM', K_MAXWAIT, c.id)
if tq.cfg.max_wait_ms ~= cjson.null then redis.call('ZADD', K_MAXWAIT, NOW + tq.cfg.max_wait_ms, c.id) end
redis.call('ZADD', tq.w, c.sc, c.id)
save_contact(c)
emit('contact.moved', { contact_id = c.id, queue_id = from, to = c.q, waited_ms = NOW - c.t0 })
dispatch_queue(c.q)
c = load_contact(c.id)
local v = contact_view(c)
if c.st == 'queued' then v.position = redis.call('ZRANK', tq.w, c.id) end
return ok(v)
