-- force_offer: a supervisor offers a waiting contact to a named agent now, ahead of the
-- queue's order and whatever the agent's state (except offline), queues or earlier
-- declines; only a free slot of the contact's channel is required (capacity is never
-- exceeded). The offer then runs like any other: accept, decline or time out.
-- KEYS, ARGV[1,2,4]: see _lib.lua.  ARGV[3]: {id, agent}
-- Returns r = contact view | errors contact_not_found, contact_not_waiting, agent_not_found,
--   agent_offline, channel_mismatch | need.
local c = load_contact(A.id)
if not c then return fail('contact_not_found', 'no contact ' .. A.id) end
if c.st ~= 'queued' then
  return fail('contact_not_waiting', 'contact ' .. A.id .. ' is ' .. c.st .. ', not waiting')
end
local a = load_agent(A.agent)
if not a then return fail('agent_not_found', 'agent ' .. A.agent .. ' has never logged in') end
if a.st == 'offline' then return fail('agent_offline', 'agent ' .. A.agent .. ' is offline') end
local ids = agent_queue_ids(a)
ids[#ids + 1] = c.q
local need = require_queues(ids)
if need then return need end
if (a.cap[c.ch] or 0) == 0 then
  return fail('channel_mismatch', 'agent ' .. A.agent .. ' does not take ' .. c.ch)
end
if load_on(a, c.ch) >= a.cap[c.ch] or (c.ch == 'chat' and not G.cdv and load_on(a, 'voice') > 0) then
  return fail('agent_busy', 'agent ' .. A.agent .. ' has no free ' .. c.ch .. ' slot')
end
local old = member_of(a)
drop_from_waiting(c)
c.ex[a.id] = nil
make_offer(c, a)
refresh_agent(a, old)
return ok(contact_view(load_contact(c.id)))
