-- accept: the agent takes the offer; the contact becomes active. Retrying is harmless.
-- KEYS, ARGV[1,2,4]: see _lib.lua (no queue keys needed).  ARGV[3]: {id, offer, agent}
-- Returns r = contact view | errors offer_not_found, offer_expired, not_your_offer.
local c = load_contact(A.id)
if not c then return fail('offer_not_found', 'no offer ' .. A.offer) end
if c.st == 'active' and c.of == A.offer and c.ag == A.agent then return ok(contact_view(c)) end
if c.of ~= A.offer or c.st ~= 'offered' then
  return fail('offer_expired', 'offer ' .. A.offer .. ' is no longer open')
end
if c.ag ~= A.agent then return fail('not_your_offer', 'offer ' .. A.offer .. ' was made to another agent') end
if c.od <= NOW then return fail('offer_expired', 'offer ' .. A.offer .. ' timed out') end
local a = load_agent(A.agent)
c.st = 'active'
c.ta = NOW
c.la = a.id
a.ct[c.id].s = 'active'
a.miss = 0
redis.call('ZREM', K_OFFERS, c.id)
redis.call('ZREM', K_REOFFER, c.id)
redis.call('ZREM', K_MAXWAIT, c.id)
save_contact(c)
save_agent(a)
emit('offer.accepted', {
  offer_id = c.of, contact_id = c.id, agent_id = a.id, queue_id = c.q, channel = c.ch,
  waited_ms = NOW - c.t0,
})
return ok(contact_view(c))
