-- decline: the agent declines the offer, or (timeout=true, from the sweeper) it expired.
-- The contact goes back with its original enqueue time and the next agent is offered it;
-- the agent is not offered this contact again for reoffer_after_s. max_no_answer
-- consecutive timeouts set the agent away with reason no_answer.
-- KEYS, ARGV[1,2,4]: see _lib.lua.  ARGV[3]: {id, offer, agent?, timeout}
-- Returns r = contact view | errors offer_not_found, offer_expired, not_your_offer | need.
local c = load_contact(A.id)
if A.timeout then
  if not c or c.st ~= 'offered' then
    redis.call('ZREM', K_OFFERS, A.id) -- orphan lease: the contact is not on offer
    return ok(cjson.null)
  end
  A.offer = c.of
end
if not c then return fail('offer_not_found', 'no offer ' .. A.offer) end
if c.lo == A.offer then return ok(contact_view(c)) end
if c.st ~= 'offered' or c.of ~= A.offer then
  return fail('offer_expired', 'offer ' .. A.offer .. ' is no longer open')
end
if A.agent and c.ag ~= A.agent then return fail('not_your_offer', 'offer ' .. A.offer .. ' was made to another agent') end
if A.timeout and c.od > NOW then return ok(contact_view(c)) end
local a = load_agent(c.ag)
local ids = agent_queue_ids(a)
ids[#ids + 1] = c.q
local need = require_queues(ids)
if need then return need end

local q = Q[c.q]
local outcome = A.timeout and 'expired' or 'declined'
emit('offer.' .. outcome, {
  offer_id = c.of, contact_id = c.id, agent_id = a.id, queue_id = c.q, channel = c.ch,
})
release_slot(a, c.id)
c.lo = c.of
if q.cfg.reoffer_ms > 0 then c.ex[a.id] = NOW + q.cfg.reoffer_ms end
if A.timeout then
  a.miss = (a.miss or 0) + 1
  if a.miss >= q.cfg.max_no_answer and a.st == 'available' then
    set_agent_state(a, 'away', 'no_answer')
  end
end
requeue(c, false)
emit('contact.requeued', { contact_id = c.id, queue_id = c.q, agent_id = a.id, reason = outcome, at_head = false })
save_agent(a)
refresh_agent(a, nil)
dispatch_queue(c.q)
dispatch_agent(a.id)
return ok(contact_view(load_contact(c.id)))
